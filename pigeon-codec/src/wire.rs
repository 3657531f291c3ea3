//! Primitive readers and writers: integers, variable byte integers, strings, binary data.

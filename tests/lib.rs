//! End-to-end tests: the broker driven over real sockets by third-party clients.

//! The Lua scripts the store runs in Redis: each is one atomic step that
//! reads before it writes (a queue limit, a patch of a stored copy, a lease
//! that must still be this node's).

/// Queues a copy for an offline session within its limits.
/// KEYS: msgs, bytes, state. ARGV: field, record, size, max messages, max bytes.
/// Returns 1 when queued, 0 when the queue is full (a copy already stored
/// under `field` is then removed).
pub(super) const ENQUEUE: &str = r"
local n = redis.call('HLEN', KEYS[1])
local had = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if had then n = n - 1 end
local b = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local size = tonumber(ARGV[3])
if n >= tonumber(ARGV[4]) or (n > 0 and b + size > tonumber(ARGV[5])) then
  if had then redis.call('HDEL', KEYS[1], ARGV[1]) end
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[2], size)
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
";

/// Gives keys created after the session went offline its TTL.
/// KEYS: state, then the keys to expire with it.
pub(super) const COPY_TTL: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
return ttl
";

/// A stored copy was sent with a packet id. KEYS: msgs. ARGV: field, the id
/// (2 bytes, big endian).
pub(super) const SENT: &str = r"
local r = redis.call('HGET', KEYS[1], ARGV[1])
if r and #r > 4 then
  redis.call('HSET', KEYS[1], ARGV[1], string.sub(r, 1, 2) .. ARGV[2] .. string.sub(r, 5))
end
return 0
";

/// PUBREL was sent for a stored QoS 2 copy. KEYS: msgs. ARGV: field.
pub(super) const RELEASED: &str = r"
local r = redis.call('HGET', KEYS[1], ARGV[1])
if r and #r > 4 then
  local flags = bit.bor(string.byte(r, 2), 2)
  redis.call('HSET', KEYS[1], ARGV[1], string.sub(r, 1, 1) .. string.char(flags) .. string.sub(r, 3))
end
return 0
";

/// When a stored will is due. KEYS: will. ARGV: unix ms (8 bytes, big endian).
pub(super) const WILL_DUE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SETRANGE', KEYS[1], 0, ARGV[1])
end
return 0
";

/// The lease, if still this node's: refreshed (ARGV[2] ms), kept for good
/// (ARGV[2] = '0') or given back (ARGV[2] = '-1'). KEYS: owner. ARGV: node, ms.
pub(super) const LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '0' then
    redis.call('PERSIST', KEYS[1])
  elseif ARGV[2] == '-1' then
    redis.call('DEL', KEYS[1])
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return 1
end
return 0
";

/// Takes one session of a node that is gone, unless another node has
/// claimed it since. KEYS: owner, the session's node key, the dead node's
/// set, this node's set, the session's state. ARGV: dead node, this node,
/// client. Returns 1 when taken.
pub(super) const ADOPT: &str = r"
local o = redis.call('GET', KEYS[1])
local n = redis.call('GET', KEYS[2])
if (o and o ~= ARGV[1] and o ~= ARGV[2]) or (n and n ~= ARGV[1]) then
  redis.call('SREM', KEYS[3], ARGV[3])
  return 0
end
local ttl = redis.call('PTTL', KEYS[5])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('SMOVE', KEYS[3], KEYS[4], ARGV[3])
return 1
";

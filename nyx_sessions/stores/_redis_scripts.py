"""The Lua scripts of :class:`~nyx_sessions.stores.redis.RedisStore`.

Every script touches the keys of ONE shard (see ``_redis_keys``): a session's keys and
its shard's deadline index and counts by type share a hash tag, so each script runs in
one Redis Cluster slot and updates the record and the indexes in one atomic step.

The record hash has the fields ``rev`` (the revision), ``type`` (the session type),
``deadline`` ('' for none), ``body`` (the msgpack record) and ``tok`` (the token of the
write that produced it, so that a write retried after a lost reply is recognised instead
of refused). The deadline index scores a session without deadline ``+inf``.

A body larger than the caller's cap is never sent back (HSTRLEN is read first): the
caller sets such a record aside without decoding it.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "CLAIM", "COMMIT", "CREATE", "READ", "RELEASE", "REMOVE", "SET_ASIDE"]

# Shared head of READ and ACQUIRE. KEYS[1]: rec. Leaves ``f`` = {rev, type, tok} and
# ``size`` = the body's length; a hash with none of the fields counts as no record.
_LOOK = """
local f = redis.pcall('HMGET', KEYS[1], 'rev', 'type', 'tok')
if f['err'] then return {3} end
local size = redis.call('HSTRLEN', KEYS[1], 'body')
if not (f[1] or f[2] or f[3]) and size == 0 then return {0} end
"""

# Shared tail: the record, unless its body is over the cap (ARGV[1]; 0 for no cap).
_ANSWER = """
local cap = tonumber(ARGV[1])
if cap > 0 and size > cap then return {4, size, f[2] or '', f[3] or ''} end
return {1, f[1] or '', redis.call('HGET', KEYS[1], 'body') or '', f[2] or '', f[3] or ''}
"""

# KEYS: rec. ARGV: cap.
# {0} no record; {1, rev, body, type, tok}; {3} the key is not a hash;
# {4, size, type, tok} the body is over the cap.
READ = _LOOK + _ANSWER

# KEYS: rec, lease. ARGV: cap, owner, lease_ms.
# As READ, after taking the lease; {2, pttl} when another owner holds it.
ACQUIRE = (
    _LOOK
    + """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {2, redis.call('PTTL', KEYS[2])} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
"""
    + _ANSWER
)

# KEYS: rec, lease, deadlines, types. ARGV: owner, lease_ms, type, body, deadline, token, id.
# 1 created (or this very create already landed); 0 the id exists.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('TYPE', KEYS[1])['ok'] == 'hash'
     and redis.call('HGET', KEYS[1], 'tok') == ARGV[6] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'rev', 1, 'type', ARGV[3], 'body', ARGV[4],
           'deadline', ARGV[5], 'tok', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[5] == '' and '+inf' or ARGV[5], ARGV[7])
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
return 1
"""

# KEYS: rec, lease, deadlines. ARGV: owner, expected_rev, body, deadline, release, token, id.
# {1, rev} saved; {0} no record (or not a hash, or one without rev and tok);
# {-1, rev} leased by another owner; {-2, rev} stale.
COMMIT = """
local f = redis.pcall('HMGET', KEYS[1], 'rev', 'tok')
if f['err'] or not (f[1] or f[2]) then return {0} end
local rev = tonumber(f[1]) or -1
local expected = tonumber(ARGV[2])
if rev == expected + 1 and f[2] == ARGV[6] then return {1, rev} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {-1, rev} end
if rev ~= expected then return {-2, rev} end
rev = expected + 1
redis.call('HSET', KEYS[1], 'rev', rev, 'body', ARGV[3], 'deadline', ARGV[4], 'tok', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[4] == '' and '+inf' or ARGV[4], ARGV[7])
if ARGV[5] == '1' and holder then redis.call('DEL', KEYS[2]) end
return {1, rev}
"""

# KEYS: lease. ARGV: owner. 1 released; 0 not ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: rec, lease, deadlines, types, end. ARGV: id, end ('' for none), end_ms.
# 1 deleted by this call; 0 nothing to delete. The end is kept with the delete; a call
# that finds nothing only adds an end where none is kept (a set-aside record's).
REMOVE = """
redis.call('DEL', KEYS[2])
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
  if ARGV[2] ~= '' then redis.call('SET', KEYS[5], ARGV[2], 'PX', ARGV[3], 'NX') end
  return 0
end
if kind == 'hash' then
  local t = redis.call('HGET', KEYS[1], 'type')
  if t and redis.call('HINCRBY', KEYS[4], t, -1) <= 0 then redis.call('HDEL', KEYS[4], t) end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[5], ARGV[2], 'PX', ARGV[3]) end
return 1
"""

# KEYS: rec, lease, aside, deadlines, types. ARGV: owner, check ('1' or '0'), token, id.
# Moves an unusable record aside (kept, without TTL) and out of the indexes, unless a
# write replaced it since it was read (``check``: its token is no longer ``token``).
# 1 moved; 0 gone or rewritten meanwhile.
SET_ASIDE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return 0 end
if kind == 'hash' then
  local f = redis.call('HMGET', KEYS[1], 'type', 'tok')
  if ARGV[2] == '1' and (f[2] or '') ~= ARGV[3] then return 0 end
  if f[1] and redis.call('HINCRBY', KEYS[5], f[1], -1) <= 0 then
    redis.call('HDEL', KEYS[5], f[1])
  end
end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('PERSIST', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[4])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

# KEYS: deadlines. ARGV: now, hold_until, ids...
# The given ids that are still due at ``now``, each moved to ``hold_until`` in the same
# atomic step: of two claimers of one id, only the first gets it.
CLAIM = """
local now = tonumber(ARGV[1])
local claimed = {}
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
    claimed[#claimed + 1] = ARGV[i]
  end
end
return claimed
"""

"""The Lua scripts of :class:`~nyx_sessions.stores.redis.RedisStore`.

Each script touches the keys of ONE session (which share a hash tag, so they live in one
Redis Cluster slot) or one global index key, never both: that is what keeps the store
usable on Redis Cluster. The session hash has the fields ``rev`` (the revision),
``type`` (the session type), ``deadline`` (empty for none), ``body`` (the msgpack
record) and ``tok`` (the token of the write that produced it, so that a write retried
after a lost reply is recognised instead of refused).
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "CLAIM", "COMMIT", "CREATE", "REINDEX", "RELEASE", "REMOVE", "SET_ASIDE"]

# KEYS: rec, lease. ARGV: owner, lease_ms, known_token ('' for none).
# {0} no record; {1, rev, body, type} lease taken; {1, rev, '', type, 1} lease taken, and
# the record is still the one that the write ``known_token`` made (the caller has it);
# {2, pttl} lease held by another; {3} the key is not a hash (corrupt). A hash with
# none of the fields counts as no record. (HMGET tells both apart from a hash: one
# command fewer than asking TYPE first, on every update.)
ACQUIRE = """
local f = redis.pcall('HMGET', KEYS[1], 'rev', 'body', 'type', 'tok')
if f['err'] then return {3} end
if not (f[1] or f[2] or f[3] or f[4]) then return {0} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {2, redis.call('PTTL', KEYS[2])} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' and f[4] == ARGV[3] then return {1, f[1] or '', '', f[3] or '', 1} end
return {1, f[1] or '', f[2] or '', f[3] or ''}
"""

# KEYS: rec, lease. ARGV: owner, lease_ms, type, body, deadline, ttl_ms, token.
# 1 created (or this very create already landed); 0 the id exists.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('TYPE', KEYS[1])['ok'] == 'hash'
     and redis.call('HGET', KEYS[1], 'tok') == ARGV[7] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'rev', 1, 'type', ARGV[3], 'body', ARGV[4],
           'deadline', ARGV[5], 'tok', ARGV[7])
if tonumber(ARGV[6]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: rec, lease. ARGV: owner, expected_rev, body, deadline, ttl_ms, release, token.
# {1, rev} saved; {0} no record (or not a hash, or one without rev and tok);
# {-1, rev} leased by another owner; {-2, rev} stale.
COMMIT = """
local f = redis.pcall('HMGET', KEYS[1], 'rev', 'tok')
if f['err'] or not (f[1] or f[2]) then return {0} end
local rev = tonumber(f[1]) or -1
local expected = tonumber(ARGV[2])
if rev == expected + 1 and f[2] == ARGV[7] then return {1, rev} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {-1, rev} end
if rev ~= expected then return {-2, rev} end
rev = expected + 1
redis.call('HSET', KEYS[1], 'rev', rev, 'body', ARGV[3], 'deadline', ARGV[4], 'tok', ARGV[7])
if tonumber(ARGV[5]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  redis.call('PERSIST', KEYS[1])
end
if ARGV[6] == '1' and holder then redis.call('DEL', KEYS[2]) end
return {1, rev}
"""

# KEYS: lease. ARGV: owner. 1 released; 0 not ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: rec, lease. {1, type} deleted by this call; {0, ''} nothing to delete.
REMOVE = """
redis.call('DEL', KEYS[2])
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {0, ''} end
local t = ''
if kind == 'hash' then t = redis.call('HGET', KEYS[1], 'type') or '' end
redis.call('DEL', KEYS[1])
return {1, t}
"""

# KEYS: rec, lease, aside. ARGV: owner, check_body ('1' or '0'), body.
# Moves a corrupt record aside, unless it was rewritten since it was read.
# {1, type} moved; {0, ''} gone or rewritten meanwhile.
SET_ASIDE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {0, ''} end
local t = ''
if kind == 'hash' then
  local f = redis.call('HMGET', KEYS[1], 'body', 'type')
  if ARGV[2] == '1' and f[1] ~= ARGV[3] then return {0, ''} end
  t = f[2] or ''
end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('PERSIST', KEYS[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return {1, t}
"""

# KEYS: deadlines. ARGV: now, limit, hold_until.
# The ids due at ``now``, each moved to ``hold_until`` in the same atomic step.
CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
"""

# KEYS: deadlines. ARGV: triples of (id, expected, new); '' as expected means "absent",
# '' as new means "remove". Each entry changes only if it still holds what the caller
# saw, so a correction never overwrites a newer write. Returns how many changed.
REINDEX = """
local changed = 0
for i = 1, #ARGV, 3 do
  local current = redis.call('ZSCORE', KEYS[1], ARGV[i])
  local seen
  if ARGV[i + 1] == '' then
    seen = not current
  else
    seen = current and tonumber(current) == tonumber(ARGV[i + 1])
  end
  if seen then
    if ARGV[i + 2] == '' then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    end
    changed = changed + 1
  end
end
return changed
"""

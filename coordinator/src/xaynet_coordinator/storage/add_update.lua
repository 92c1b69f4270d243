-- Accept one update atomically, or refuse it and write nothing: every check runs before the
-- first write, because a Lua script is not rolled back when it stops half way.
--
-- KEYS[1] sum dict (hash), KEYS[2] update participants (set), KEYS[3] journal (list),
-- KEYS[3 + i] seed dict column of summer i (hash), i = 1..n
-- ARGV[1] updater pk, ARGV[2] journal entry, ARGV[1 + 2i] summer i's pk, ARGV[2 + 2i] its sealed seed
--
-- Returns 0 accepted, -1 length mismatch, -2 unknown summer, -3 already submitted,
-- -4 a column already holds this updater although it never submitted (corrupted data).
local n = #KEYS - 3
if #ARGV ~= 2 + 2 * n then
  return redis.error_reply('add_update: expected ' .. (2 + 2 * n) .. ' arguments, got ' .. #ARGV)
end

if redis.call('HLEN', KEYS[1]) ~= n then
  return -1
end
for i = 1, n do
  if redis.call('HEXISTS', KEYS[1], ARGV[1 + 2 * i]) == 0 then
    return -2
  end
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return -3
end
for i = 1, n do
  if redis.call('HEXISTS', KEYS[3 + i], ARGV[1]) == 1 then
    return -4
  end
end

redis.call('SADD', KEYS[2], ARGV[1])
for i = 1, n do
  redis.call('HSET', KEYS[3 + i], ARGV[1], ARGV[2 + 2 * i])
end
redis.call('RPUSH', KEYS[3], ARGV[2])
return 0

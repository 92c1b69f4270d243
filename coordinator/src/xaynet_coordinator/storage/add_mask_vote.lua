-- Count one summer's vote for a mask atomically, or refuse it and write nothing. Votes are
-- counted per mask digest and the mask itself is stored once, however many summers send it.
--
-- KEYS[1] sum dict (hash), KEYS[2] summers that voted (set), KEYS[3] masks (hash digest -> mask),
-- KEYS[4] votes (sorted set digest -> count)
-- ARGV[1] summer pk, ARGV[2] SHA-256 of the mask, ARGV[3] mask
--
-- Returns 0 counted, -1 unknown summer, -2 already voted.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -1
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return -2
end
redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[3])
redis.call('ZINCRBY', KEYS[4], 1, ARGV[2])
return 0

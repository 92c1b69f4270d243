-- The most-voted masks with their vote counts, read in one atomic step.
--
-- KEYS[1] votes (sorted set digest -> count), KEYS[2] masks (hash digest -> mask)
-- ARGV[1] how many (at least 1)
--
-- Returns a flat array: mask 1, votes 1, mask 2, votes 2, ... most votes first.
local top = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local result = {}
for i = 1, #top, 2 do
  local mask = redis.call('HGET', KEYS[2], top[i])
  if not mask then
    return redis.error_reply('best_masks: a voted mask digest has no stored mask')
  end
  result[#result + 1] = mask
  result[#result + 1] = top[i + 1]
end
return result

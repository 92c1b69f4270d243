-- Store a checkpoint of the running aggregate and drop the journal entries it newly covers, in
-- one atomic step, so that checkpoint count + journal length always equals the accepted updates.
--
-- KEYS[1] checkpoint (hash: round_id, count, aggregate), KEYS[2] journal (list)
-- ARGV[1] round id, ARGV[2] count, ARGV[3] aggregate
--
-- Returns the number of journal entries dropped.
local previous = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local count = tonumber(ARGV[2])
local covered = count - previous
if covered < 0 then
  return redis.error_reply(
    'save_checkpoint: checkpoint of ' .. count .. ' updates is older than the stored one ('
      .. previous .. ')')
end
local journaled = redis.call('LLEN', KEYS[2])
if covered > journaled then
  return redis.error_reply(
    'save_checkpoint: checkpoint of ' .. count .. ' updates covers ' .. covered
      .. ' journal entries, only ' .. journaled .. ' are journaled')
end
redis.call('LTRIM', KEYS[2], covered, -1)
redis.call('HSET', KEYS[1], 'round_id', ARGV[1], 'count', ARGV[2], 'aggregate', ARGV[3])
return covered

-- PUT /v1/shards/{id}/like: a random (user, shard) pair out of many users x many shards,
-- so requests are real inserts, not repeats of an idempotent no-op (args: tokens, shard ids).
local tokens, shards
function init(args)
  seed_rng()
  tokens = read_lines(args[1])
  shards = read_lines(args[2])
end

function request()
  local t = tokens[math.random(#tokens)]
  local s = shards[math.random(#shards)]
  return wrk.format("PUT", "/v1/shards/" .. s .. "/like", {["Authorization"] = "Bearer " .. t})
end

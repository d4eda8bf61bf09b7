-- POST /v1/shards as a random pre-created user (args: tokens file).
local tokens
function init(args)
  seed_rng()
  tokens = read_lines(args[1])
end

function request()
  local t = tokens[math.random(#tokens)]
  return wrk.format("POST", "/v1/shards",
    {["Authorization"] = "Bearer " .. t, ["Content-Type"] = "application/json"},
    '{"body": "wrk shard ' .. math.random(1000000) .. '"}')
end

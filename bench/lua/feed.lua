-- GET /v1/feed as users picked from a tokens file (args: tokens file, mode).
-- mode "hot": a few users over and over (cache hits); "cold": each user once, in order
-- (cache misses); "zipf": rank r with probability ~ 1/r over every user.
local tokens, mode, cdf, next_i
function init(args)
  seed_rng()
  tokens = read_lines(args[1])
  mode = args[2] or "hot"
  next_i = (tonumber(args[3]) or 1) + (tid or 1) - 1
  if mode == "zipf" then
    cdf, total = {}, 0
    for r = 1, #tokens do total = total + 1 / r; cdf[r] = total end
    for r = 1, #tokens do cdf[r] = cdf[r] / total end
  end
end

local function pick()
  if mode == "cold" then
    local i = next_i
    next_i = next_i + 2  -- two wrk threads interleave odd/even users
    return tokens[((i - 1) % #tokens) + 1]
  elseif mode == "zipf" then
    local u, lo, hi = math.random(), 1, #tokens
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    return tokens[lo]
  end
  return tokens[math.random(math.min(#tokens, 8))]
end

function request()
  return wrk.format("GET", "/v1/feed?limit=20", {["Authorization"] = "Bearer " .. pick()})
end

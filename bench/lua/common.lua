-- Shared by every bench script (bench/wrk.py prepends it): load tokens/ids from files
-- named in the script arguments, seed each thread's RNG, print one JSON summary line.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function read_lines(path)
  local out = {}
  if path == nil then return out end
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function seed_rng()
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end

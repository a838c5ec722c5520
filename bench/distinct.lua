-- wrk: one distinct alert per request. Each wrk thread has its own key space
-- (thread id + random prefix), so threads never repeat each other's alerts.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() + id)
  prefix = id .. "-" .. math.random(1, 1000000000)
  counter = 0
  severity = os.getenv("SEVERITY") or "warning"
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"resource":"host-%s-%d","check":"bench","severity":"%s","summary":"load test"}',
    prefix, counter, severity)
  return wrk.format("POST", "/api/v1/ingest/generic",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer dev-ingest-token" }, body)
end

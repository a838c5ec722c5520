-- wrk: one distinct alert per request to Prometheus Alertmanager's API v2, the same
-- shape of load as distinct.lua sends Tocsin (each thread its own key space).
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() + id)
  prefix = id .. "-" .. math.random(1, 1000000000)
  counter = 0
end
function request()
  counter = counter + 1
  local body = string.format(
    '[{"labels":{"alertname":"bench","instance":"host-%s-%d","severity":"warning"},"annotations":{"summary":"load test"}}]',
    prefix, counter)
  return wrk.format("POST", "/api/v2/alerts", { ["Content-Type"] = "application/json" }, body)
end

-- wrk: distinct P3 alerts, and one request in ten a critical alert from a pool of 50
-- shared by every wrk thread, so behind round-robin the same alert reaches several
-- replicas at the same instant (repeats join one alert, one incident, one page).
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
  local body
  if math.random(1, 10) == 1 then
    body = string.format(
      '{"resource":"shared-%d","check":"bench","severity":"critical","summary":"repeated across replicas"}',
      math.random(1, 50))
  else
    body = string.format(
      '{"resource":"host-%s-%d","check":"bench","severity":"warning","summary":"load test"}',
      prefix, counter)
  end
  return wrk.format("POST", "/api/v1/ingest/generic",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer dev-ingest-token" }, body)
end

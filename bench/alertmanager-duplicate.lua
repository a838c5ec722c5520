-- wrk: the same alert on every request to Prometheus Alertmanager's API v2, the same
-- shape of load as duplicate.lua sends Tocsin (a storm of repeats).
wrk.method = "POST"
wrk.path = "/api/v2/alerts"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '[{"labels":{"alertname":"http","instance":"web-1","severity":"critical"},"annotations":{"summary":"storm"}}]'

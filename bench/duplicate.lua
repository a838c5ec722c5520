-- wrk: the same alert on every request (a storm of repeats).
wrk.method = "POST"
wrk.path = "/api/v1/ingest/generic"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer dev-ingest-token"
wrk.body = '{"resource":"web-1","check":"http","severity":"critical","summary":"storm"}'

-- wrk script for the ingest benchmark: distinct one-alert webhooks, as bench/ingest.py sends.
--   wrk -t2 -c16 -d5s -s bench/ingest.lua --latency http://127.0.0.1:PORT
local counter = 0
local tid = 0
setup = function(thread) tid = tid + 1; thread:set("tid", tid) end
request = function()
  counter = counter + 1
  local n = string.format("%03d%09d", tid or 0, counter)
  local body = '{"version":"4","groupKey":"{}:{alertname=\\"Bench' .. n .. '\\"}","status":"firing","receiver":"bench","externalURL":"http://alertmanager:9093","alerts":[{"status":"firing","labels":{"alertname":"Bench' .. n .. '","instance":"i0","severity":"warning"},"annotations":{"summary":"benchmark"},"startsAt":"2026-11-22T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph?g0.expr=up%20%3D%3D%200","fingerprint":"' .. n .. '"}]}'
  return wrk.format("POST", "/alertmanager", {["Content-Type"]="application/json"}, body)
end
response = function(status, headers, body)
  if status ~= 202 then io.stderr:write("status " .. status .. "\n") end
end

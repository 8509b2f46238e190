-- wrk script: GET /?user_id=1 .. 7 in turn (the seed's seven users), the
-- requests formatted once up front so the script costs wrk next to nothing.
local requests = {}
for id = 1, 7 do
  requests[id] = wrk.format("GET", "/?user_id=" .. id)
end
local n = 0
request = function()
  n = n % 7 + 1
  return requests[n]
end

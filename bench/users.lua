-- wrk script: GET /?user_id=1 .. 7 in turn (the seed's seven users), the
-- requests formatted once per thread so the script costs wrk next to nothing.
-- (Formatted in init(), after wrk has set the Host header: a request without
-- one is a 400 from nginx and userkey-lb.)
local requests = {}
local n = 0

function init(args)
  for id = 1, 7 do
    requests[id] = wrk.format("GET", "/?user_id=" .. id)
  end
end

function request()
  n = n % 7 + 1
  return requests[n]
end

-- wrk script for bench/server.sh: POST /auth/login (JSON, as the contract's login), each request
-- as the next of LOGIN_USERS distinct users (LOGIN_EMAIL_PREFIX<i>@example.com, i = 1..N, all
-- with LOGIN_PASSWORD), so that the per-email throttle (10 password checks a minute) is not
-- what is measured. Counts the statuses and prints them in done() as one line:
--   statuses 200=… 401=… 429=… 503=… other=…
-- Meant for `wrk -t1` (each thread would start at user 1).

local users = tonumber(os.getenv("LOGIN_USERS") or "64")
local prefix = os.getenv("LOGIN_EMAIL_PREFIX") or "bench-user-"
local password = os.getenv("LOGIN_PASSWORD") or "bench password"

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    n = 0
    s200, s401, s429, s503, sother = 0, 0, 0, 0, 0
    reqs = {}
    for i = 1, users do
        local body = string.format('{"email":"%s%d@example.com","password":"%s"}', prefix, i, password)
        reqs[i] = wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" }, body)
    end
end

function request()
    n = n % users + 1
    return reqs[n]
end

function response(status, headers, body)
    if status == 200 then
        s200 = s200 + 1
    elseif status == 401 then
        s401 = s401 + 1
    elseif status == 429 then
        s429 = s429 + 1
    elseif status == 503 then
        s503 = s503 + 1
    else
        sother = sother + 1
    end
end

function done(summary, latency, requests)
    local t = { 0, 0, 0, 0, 0 }
    for _, thread in ipairs(threads) do
        t[1] = t[1] + thread:get("s200")
        t[2] = t[2] + thread:get("s401")
        t[3] = t[3] + thread:get("s429")
        t[4] = t[4] + thread:get("s503")
        t[5] = t[5] + thread:get("sother")
    end
    io.write(string.format("statuses 200=%d 401=%d 429=%d 503=%d other=%d\n", t[1], t[2], t[3], t[4], t[5]))
end

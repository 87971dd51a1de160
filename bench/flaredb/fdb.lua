-- fdb.lua - wrk script for bench/flaredb: one flaredb API request per call,
-- the statements sqlite_load.c runs locally (same SQL, same parameters).
-- Environment: BENCH_OP (insert | get | sget | batch | kvput), BENCH_TOKEN
-- (an IAM bearer token), BENCH_VALUE (the text value of every row),
-- BENCH_ROWS (get/sget: ids 1..ROWS exist), BENCH_BATCH (batch: inserts per
-- request), BENCH_KEYS (kvput: the key file bench/chainfire/kv.py wrote),
-- BENCH_NS (kvput: the namespace).
local op = assert(os.getenv("BENCH_OP"), "BENCH_OP unset")
local token = assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN unset")
local ops = { insert = true, get = true, sget = true, batch = true, kvput = true }
assert(ops[op], "BENCH_OP: insert, get, sget, batch or kvput")

local INSERT = "INSERT INTO item(name, value) VALUES (?, ?)"
local GET = "SELECT id, name, value FROM item WHERE id = ?"
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }

local value = os.getenv("BENCH_VALUE") or ""
local rows = tonumber(os.getenv("BENCH_ROWS") or "0")
local batch = tonumber(os.getenv("BENCH_BATCH") or "0")
assert(value:match("^[%w]*$"), "BENCH_VALUE: letters and digits only (it goes into JSON as is)")
assert(op ~= "batch" or batch >= 1, "BENCH_BATCH unset")
assert((op ~= "get" and op ~= "sget") or rows >= 1, "BENCH_ROWS unset")

-- kvput: column 2 of the key file is base64url (line 1 holds the value).
local keys, kvalue, ns = {}, nil, os.getenv("BENCH_NS") or "bench"
if op == "kvput" then
    local path = assert(os.getenv("BENCH_KEYS"), "BENCH_KEYS unset")
    for line in io.lines(path) do
        local f = {}
        for w in line:gmatch("%S+") do
            f[#f + 1] = w
        end
        if kvalue == nil then
            kvalue = f[3]
        else
            keys[#keys + 1] = f[2]
        end
    end
    assert(kvalue and #keys > 0, "empty key file " .. path)
end

-- Each wrk thread has its own Lua state: give each its own id, so row names
-- differ between threads, and its own random stream.
local next_id = 0
function setup(thread)
    next_id = next_id + 1
    thread:set("id", next_id)
end

local seq = 0
function init()
    math.randomseed(os.time() * 1000 + (id or 0))
end

-- One insert statement naming its row "t<thread>-<seq>", as sqlite_load
-- names its rows "c<client>-<seq>".
local function insert_stmt()
    seq = seq + 1
    return '{"sql":"' .. INSERT .. '","params":["t' .. (id or 0) .. "-" .. seq .. '","' .. value .. '"]}'
end

local function sql(stmts, extra)
    local body = '{"statements":[' .. stmts .. "]" .. (extra or "") .. "}"
    return wrk.format("POST", "/api/v1/sql", headers, body)
end

local function get_stmt()
    return '{"sql":"' .. GET .. '","params":[' .. math.random(rows) .. "]}"
end

local build = {
    insert = function()
        return sql(insert_stmt())
    end,
    get = function()
        return sql(get_stmt())
    end,
    sget = function()
        return sql(get_stmt(), ',"consistency":"serializable"')
    end,
    batch = function()
        local s = {}
        for i = 1, batch do
            s[i] = insert_stmt()
        end
        return sql(table.concat(s, ","), ',"transaction":true')
    end,
    kvput = function()
        local k = keys[math.random(#keys)]
        return wrk.format("PUT", "/api/v1/kv/" .. ns .. "/" .. k, headers, '{"value":"' .. kvalue .. '"}')
    end,
}

request = build[op]

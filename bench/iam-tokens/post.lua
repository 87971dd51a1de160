-- post.lua - wrk script for bench/iam-tokens: POST the JSON body held in
-- the file named by $BENCH_BODY_FILE (a token request) on every request.
local f = assert(io.open(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE unset"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

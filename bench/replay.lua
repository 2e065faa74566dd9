-- wrk script: replays pre-generated requests and checks every answer.
--
--   wrk ... -s replay.lua URL -- FILE MODE THREADS STATUS MARKER [BODY]
--
-- FILE holds one request a line: METHOD TAB PATH TAB HEADERS TAB BODY,
-- HEADERS being "Name: value" pairs joined by the byte 0x1f.  MODE is
-- "once" (each request is sent once, the threads share the file out:
-- thread t takes lines t, t+THREADS, ...; a thread that runs out stops
-- and the run is reported as exhausted) or "cycle" (every thread goes
-- round its share again and again).  An answer counts as an error unless
-- its status is STATUS and, when BODY is given, its body is exactly BODY.
--
-- In "once" mode the caller appends replay_once.lua, whose delay() holds
-- a thread that has run out; when its last answer is in, it creates the
-- file MARKER.<thread>, and the caller ends wrk with SIGINT once every
-- thread has done so (wrk itself always runs for its -d duration).

local threads = {}
local counter = 0

function setup(thread)
	thread:set("tid", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

local reqs, n, i, mode, want_status, want_body, marker
bad, sent, got, exhausted, first_bad = 0, 0, 0, 0, ""

local function split(s, sep)
	local out, from = {}, 1
	while true do
		local a, b = string.find(s, sep, from, true)
		if a == nil then
			table.insert(out, string.sub(s, from))
			return out
		end
		table.insert(out, string.sub(s, from, a - 1))
		from = b + 1
	end
end

function init(args)
	local file, nthreads = args[1], tonumber(args[3])
	mode, want_status, marker = args[2], tonumber(args[4]), args[5]
	want_body = args[6]
	reqs, n, i = {}, 0, 0
	local line_no = 0
	for line in io.lines(file) do
		if line_no % nthreads == tid then
			local f = split(line, "\t")
			local headers = {}
			if f[3] ~= "" then
				for _, h in ipairs(split(f[3], "\31")) do
					local c = string.find(h, ":", 1, true)
					headers[string.sub(h, 1, c - 1)] =
					    string.gsub(string.sub(h, c + 1), "^ +", "")
				end
			end
			local body = f[4]
			if body == "" then body = nil end
			n = n + 1
			reqs[n] = wrk.format(f[1], f[2], headers, body)
		end
		line_no = line_no + 1
	end
end

function finished()
	if exhausted == 1 and got == sent then
		local f = io.open(marker .. "." .. tid, "w")
		if f ~= nil then f:close() end
		exhausted = 2
	end
end

function request()
	if i >= n then
		i = 0	-- "cycle"; in "once" mode delay() never lets us here
	end
	i = i + 1
	sent = sent + 1
	return reqs[i]
end

function response(status, headers, body)
	got = got + 1
	if exhausted == 1 then finished() end
	if status ~= want_status or (want_body ~= nil and body ~= want_body) then
		bad = bad + 1
		if first_bad == "" then
			first_bad = status .. " " .. string.sub(body or "", 1, 200)
		end
	end
end

function done(summary, latency, requests)
	local b, s, ex, fb = 0, 0, 0, ""
	for _, t in ipairs(threads) do
		b = b + t:get("bad")
		s = s + t:get("sent")
		if t:get("exhausted") > 0 then ex = ex + 1 end
		if fb == "" then fb = t:get("first_bad") end
	end
	local e = summary.errors
	io.write(string.format('BENCH {"requests": %d, "duration_us": %d, '
	    .. '"bad": %d, "sent": %d, "exhausted": %d, "socket_errors": %d, '
	    .. '"timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
	    .. '"mean_us": %.1f, "first_bad": "%s"}\n',
	    summary.requests, summary.duration, b, s, ex,
	    e.connect + e.read + e.write, e.timeout,
	    latency:percentile(50), latency:percentile(99), latency.max,
	    latency.mean, string.gsub(fb, '[%c"\\]', "?")))
end

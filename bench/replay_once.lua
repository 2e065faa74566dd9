-- Appended to replay.lua in "once" mode.  wrk asks delay() before each
-- request of each connection, so a request is reserved here: a thread
-- whose requests are all reserved holds its connections (an hour, longer
-- than any run) instead of starting again.
local reserved = 0

function delay()
	if reserved >= n then
		if exhausted == 0 then
			exhausted = 1
			finished()
		end
		return 3600000
	end
	reserved = reserved + 1
	return 0
end

-- wrk calls request() once on the first thread to look at the request
-- (script_verify_request) without sending it: that call reserved nothing
-- and must not use one up.
local send_request = request

function request()
	if i >= reserved then
		return reqs[1]
	end
	return send_request()
end

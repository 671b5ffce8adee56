local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Reports the HTTP status line of the request that http-headers makes: HEAD /
when the server answers HEAD with 200, else GET /. Both requests go through
nmap's HTTP cache, so next to http-headers and http-title nothing is sent
twice. Written for xray-loader (Watchtower), whose nmap toolchain needs the
status code that http-headers does not print.
]]

---
-- @output
-- | xray-http-status: HTTP/1.1 200 OK (HEAD)
--
-- @xmloutput
-- <elem key="status">200</elem>
-- <elem key="status_line">HTTP/1.1 200 OK</elem>
-- <elem key="request">HEAD</elem>

author = "Watchtower"
license = "Same as Nmap--See https://nmap.org/book/man-legal.html"
categories = {"discovery", "safe"}

portrule = shortport.http

action = function(host, port)
  local path = "/"
  local request = "HEAD"
  local ok, result = http.can_use_head(host, port, nil, path)
  if not ok then
    result = http.get(host, port, path)
    request = "GET"
  end
  if not (result and result.status) then
    return nil
  end
  local line = (result["status-line"] or ""):gsub("[\r\n]+$", "")
  local out = stdnse.output_table()
  out.status = result.status
  out.status_line = line
  out.request = request
  return out, ("%s (%s)"):format(line, request)
end

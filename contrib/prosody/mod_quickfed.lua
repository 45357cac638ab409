-- contrib/prosody/mod_quickfed.lua - send all outgoing s2s of a Prosody to a quickfed proxy.
-- SPDX-License-Identifier: ISC
--
-- Loaded into the local Prosody (0.12.x) that sits behind quickfed. mod_s2s asks
-- net.resolvers.service for the targets of every remote domain; this module replaces
-- the `new` field of that shared module table so that "xmpp-server" always resolves to
-- quickfed's loopback "local" listener and "xmpps-server" (direct TLS) to nothing.
-- Dialback db:verify stanzas for remote domains follow the same route, so quickfed
-- answers them. The original function is put back when the module is unloaded.
--
-- Options (global section):
--   quickfed_address = "127.0.1.1"   -- quickfed's local listener (an IP literal)
--   quickfed_port    = 5270

module:set_global();

local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";

local quickfed_address = module:get_option_string("quickfed_address", "127.0.0.1");
local quickfed_port = module:get_option_number("quickfed_port", 5270);

-- A resolver that has no targets: used for "xmpps-server" so that Prosody never
-- tries direct TLS around quickfed.
local empty_mt = { __index = {
	next = function (self, cb)
		cb(nil);
	end;
} };

local original_new = service.new;
if service._quickfed_original_new then
	-- A previous instance of this module is still hooked in (reload): keep the real one.
	original_new = service._quickfed_original_new;
end
service._quickfed_original_new = original_new;

local function quickfed_new(hostname, srv, conn_type, extra)
	if srv == "xmpp-server" then
		module:log("debug", "routing s2s for %s to quickfed at %s port %d",
			tostring(hostname), quickfed_address, quickfed_port);
		return basic.new(quickfed_address, quickfed_port, conn_type or "tcp", extra);
	elseif srv == "xmpps-server" then
		module:log("debug", "no direct TLS to %s: quickfed handles it", tostring(hostname));
		return setmetatable({ hostname = hostname; last_error = "direct TLS disabled by mod_quickfed" }, empty_mt);
	end
	return original_new(hostname, srv, conn_type, extra);
end

service.new = quickfed_new;
module:log("info", "all outgoing s2s is routed to quickfed at %s port %d", quickfed_address, quickfed_port);

function module.unload()
	if service.new == quickfed_new then
		service.new = original_new;
		service._quickfed_original_new = nil;
		module:log("info", "outgoing s2s no longer routed to quickfed");
	end
end

-- srmudp.lua — Wireshark/tshark dissector for srmudp's outer wire format.
--
--   tshark -X lua_script:tools/srmudp.lua -r capture.pcap
--   wireshark -X lua_script:/usr/local/share/srmudp/srmudp.lua
--   (or copy it to ~/.local/lib/wireshark/plugins/)
--
-- What it shows (byte layouts: docs/PROTOCOL.md §2, core/protocol/wire.h,
-- core/protocol/rendezvous.h): the 4-byte header of every packet; HANDSHAKE_INIT,
-- HANDSHAKE_RESP and COOKIE_REPLY field by field; DATA's receiver index
-- and packet number (the payload is encrypted: it stays opaque); the
-- rendezvous messages (a msgpack map after the header) with their kind,
-- keys, addresses, counters and MAC; RELAY packets with the peer key and
-- the inner srmudp packet dissected in turn.
--
-- Packets are found heuristically (type, version, exact sizes, reserved
-- bytes), on any UDP port.  Preference srmudp.udp_port also binds one port
-- outright (Edit > Preferences > Protocols > SRMUDP, or
-- `-o srmudp.udp_port:4000`).

local p = Proto("srmudp", "srmudp secure transport")

local TYPES = {
	[1] = "HANDSHAKE_INIT", [2] = "HANDSHAKE_RESP", [3] = "COOKIE_REPLY",
	[4] = "DATA", [5] = "PUNCH", [8] = "RENDEZVOUS", [9] = "RELAY",
}
local SIZES = { [1] = 176, [2] = 124, [3] = 64, [5] = 44 } -- exact (PROTOCOL.md §1)
local DATA_MIN = 32                              -- header 16 + tag 16
local KEY_BYTES = 32
local RDV_KINDS = {
	[1] = "REGISTER", [2] = "CHALLENGE", [3] = "AUTH", [4] = "REGISTERED",
	[5] = "LOOKUP", [6] = "PEER", [7] = "PUNCH", [8] = "NOTFOUND", [9] = "NOTREG",
}
local RDV_FIELDS = {
	[0] = "kind", [1] = "pub", [2] = "eph", [3] = "time", [4] = "cookie", [5] = "ts",
	[6] = "candidates", [7] = "addr", [8] = "peer", [9] = "ttl", [10] = "ctr",
	[11] = "pad", [12] = "mac",
}

local f = {
	type = ProtoField.uint8("srmudp.type", "Type", base.DEC, TYPES),
	version = ProtoField.uint8("srmudp.version", "Version", base.DEC),
	reserved = ProtoField.uint16("srmudp.reserved", "Reserved", base.HEX),
	sender = ProtoField.uint32("srmudp.sender_index", "Sender index", base.HEX),
	receiver = ProtoField.uint32("srmudp.receiver_index", "Receiver index", base.HEX),
	ephemeral = ProtoField.bytes("srmudp.ephemeral", "Ephemeral public key"),
	enc_static = ProtoField.bytes("srmudp.encrypted_static", "Encrypted static key + tag"),
	enc_payload = ProtoField.bytes("srmudp.encrypted_payload", "Encrypted payload + tag"),
	mac1 = ProtoField.bytes("srmudp.mac1", "mac1"),
	mac2 = ProtoField.bytes("srmudp.mac2", "mac2"),
	has_cookie = ProtoField.bool("srmudp.mac2_present", "Carries a cookie (mac2 non-zero)"),
	nonce = ProtoField.bytes("srmudp.nonce", "Nonce"),
	enc_cookie = ProtoField.bytes("srmudp.encrypted_cookie", "Encrypted cookie + tag"),
	pn = ProtoField.uint64("srmudp.packet_number", "Packet number", base.DEC),
	ciphertext = ProtoField.bytes("srmudp.ciphertext", "Ciphertext (frames)"),
	ciphertext_len = ProtoField.uint32("srmudp.ciphertext_len", "Ciphertext length", base.DEC),
	tag = ProtoField.bytes("srmudp.tag", "Authentication tag"),
	relay_key = ProtoField.bytes("srmudp.relay.peer_key", "Peer key"),
	relay_fp = ProtoField.string("srmudp.relay.peer", "Peer (key fingerprint)"),
	rdv_kind = ProtoField.uint8("srmudp.rdv.kind", "Rendezvous message", base.DEC, RDV_KINDS),
	rdv_field = ProtoField.bytes("srmudp.rdv.field", "Field"),
	rdv_key = ProtoField.string("srmudp.rdv.key", "Key (base64url)"),
	rdv_uint = ProtoField.uint64("srmudp.rdv.uint", "Value", base.DEC),
	rdv_addr = ProtoField.string("srmudp.rdv.address", "Address"),
	rdv_ctr = ProtoField.uint64("srmudp.rdv.ctr", "Counter", base.DEC),
	rdv_ts = ProtoField.uint64("srmudp.rdv.timestamp", "Timestamp (ms)", base.DEC),
	rdv_ttl = ProtoField.uint64("srmudp.rdv.ttl", "Record lifetime (ms)", base.DEC),
	rdv_mac = ProtoField.bytes("srmudp.rdv.mac", "MAC"),
	rdv_pad = ProtoField.uint32("srmudp.rdv.padding", "Padding bytes", base.DEC),
}
p.fields = f

local e_bad = ProtoExpert.new("srmudp.malformed", "Malformed srmudp packet",
	expert.group.MALFORMED, expert.severity.WARN)
p.experts = { e_bad }

p.prefs.udp_port = Pref.uint("UDP port", 0, "Also decode this UDP port as srmudp (0: heuristics only)")

-- ---- helpers ----------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- Unpadded URL-safe base64, as srmudp prints keys (srm_pubkey_encode).
local function b64url(range)
	local out, bits, nbits = {}, 0, 0
	for i = 0, range:len() - 1 do
		bits = bits * 256 + range(i, 1):uint()
		nbits = nbits + 8
		while nbits >= 6 do
			nbits = nbits - 6
			local v = math.floor(bits / 2 ^ nbits) % 64
			out[#out + 1] = B64:sub(v + 1, v + 1)
		end
		bits = bits % 2 ^ nbits
	end
	if nbits > 0 then
		local v = (bits * 2 ^ (6 - nbits)) % 64
		out[#out + 1] = B64:sub(v + 1, v + 1)
	end
	return table.concat(out)
end

-- An endpoint: 4-byte IPv4 or 16-byte IPv6 address, port big-endian.
local function endpoint_text(r)
	if r:len() == 6 then
		return string.format("%s:%d", tostring(r(0, 4):ipv4()), r(4, 2):uint())
	elseif r:len() == 18 then
		return string.format("[%s]:%d", tostring(r(0, 16):ipv6()), r(16, 2):uint())
	end
	return nil
end

local function all_zero(r)
	for i = 0, r:len() - 1 do
		if r(i, 1):uint() ~= 0 then return false end
	end
	return true
end

-- ---- msgpack (only what rendezvous messages use) ----------------------

-- Reads one msgpack value at off.  Returns kind ("uint", "bin", "array",
-- "map", "other"), value (UInt64/number, or {off, len} of bin, or count),
-- and the offset after its header (bin: after the data).
local function mp_read(tvb, off)
	if off >= tvb:len() then return nil end
	local b = tvb(off, 1):uint()
	local function need(n) return off + n <= tvb:len() end
	if b <= 0x7f then return "uint", UInt64(b), off + 1 end
	if b >= 0x80 and b <= 0x8f then return "map", b - 0x80, off + 1 end
	if b >= 0x90 and b <= 0x9f then return "array", b - 0x90, off + 1 end
	if b == 0xcc and need(2) then return "uint", UInt64(tvb(off + 1, 1):uint()), off + 2 end
	if b == 0xcd and need(3) then return "uint", UInt64(tvb(off + 1, 2):uint()), off + 3 end
	if b == 0xce and need(5) then return "uint", UInt64(tvb(off + 1, 4):uint()), off + 5 end
	if b == 0xcf and need(9) then return "uint", tvb(off + 1, 8):uint64(), off + 9 end
	if b == 0xc4 and need(2) then
		local n = tvb(off + 1, 1):uint()
		if need(2 + n) then return "bin", { off + 2, n }, off + 2 + n end
	end
	if b == 0xc5 and need(3) then
		local n = tvb(off + 1, 2):uint()
		if need(3 + n) then return "bin", { off + 3, n }, off + 3 + n end
	end
	if b == 0xdc and need(3) then return "array", tvb(off + 1, 2):uint(), off + 3 end
	if b == 0xde and need(3) then return "map", tvb(off + 1, 2):uint(), off + 3 end
	return "other", nil, nil
end

local function dissect_rendezvous(tvb, pinfo, tree)
	local off = 4
	local kind, count, nxt = mp_read(tvb, off)
	if kind ~= "map" then
		tree:add_proto_expert_info(e_bad, "rendezvous body is not a msgpack map")
		return "RENDEZVOUS (malformed)"
	end
	off = nxt
	local summary = "RENDEZVOUS"
	for _ = 1, count do
		local kk, key, after_key = mp_read(tvb, off)
		if kk ~= "uint" then break end
		local k = key:tonumber()
		local vk, v, after = mp_read(tvb, after_key)
		if not after then
			tree:add_proto_expert_info(e_bad, "truncated or unknown msgpack value")
			break
		end
		local name = RDV_FIELDS[k] or ("field " .. k)
		local whole = tvb(off, after - off)
		if k == 0 and vk == "uint" then
			local kn = v:tonumber()
			tree:add(f.rdv_kind, whole, kn)
			summary = "RENDEZVOUS " .. (RDV_KINDS[kn] or ("kind " .. kn))
		elseif vk == "bin" and v[2] == KEY_BYTES then
			local r = tvb(v[1], v[2])
			local t = tree:add(f.rdv_field, whole):set_text(name .. ": " .. b64url(r))
			t:add(f.rdv_key, r, b64url(r))
			if k == 8 then summary = summary .. " peer=" .. b64url(r):sub(1, 8) end
		elseif vk == "bin" and k == 7 then
			tree:add(f.rdv_addr, whole, endpoint_text(tvb(v[1], v[2])) or "?"):prepend_text("reflexive ")
			summary = summary .. " addr=" .. (endpoint_text(tvb(v[1], v[2])) or "?")
		elseif vk == "array" and k == 6 then
			local t = tree:add(f.rdv_field, whole):set_text(string.format("candidates: %d", v))
			local o = after
			for _ = 1, v do
				local ek, ev, eo = mp_read(tvb, o)
				if ek ~= "bin" then break end
				t:add(f.rdv_addr, tvb(o, eo - o), endpoint_text(tvb(ev[1], ev[2])) or "?")
				o = eo
			end
			t:set_len(o - off)
			after = o
		elseif vk == "bin" and k == 12 then
			tree:add(f.rdv_mac, tvb(v[1], v[2]))
		elseif vk == "bin" and k == 11 then
			tree:add(f.rdv_pad, whole, v[2])
		elseif vk == "uint" and k == 10 then
			tree:add(f.rdv_ctr, whole, v)
		elseif vk == "uint" and k == 5 then
			tree:add(f.rdv_ts, whole, v)
		elseif vk == "uint" and k == 9 then
			tree:add(f.rdv_ttl, whole, v)
		elseif vk == "uint" then
			tree:add(f.rdv_uint, whole, v):prepend_text(name .. ": ")
		elseif vk == "bin" then
			tree:add(f.rdv_field, whole):set_text(string.format("%s: %d bytes", name, v[2]))
		else
			tree:add(f.rdv_field, whole):set_text(name .. ": (" .. vk .. ")")
		end
		off = after
	end
	return summary
end

-- ---- the outer packet --------------------------------------------------

-- Is this plausibly an srmudp packet?  Exact sizes and zero reserved bytes
-- for the handshake messages; a msgpack map for rendezvous; a plausible
-- inner packet for relay.
local function looks_like(tvb, off)
	local len = tvb:len() - off
	if len < 4 then return false end
	local t, v = tvb(off, 1):uint(), tvb(off + 1, 1):uint()
	if v ~= 1 or tvb(off + 2, 2):uint() ~= 0 then return false end
	if SIZES[t] then return len == SIZES[t] end
	if t == 4 then return len >= DATA_MIN end
	if t == 8 then
		local b = tvb(off + 4, 1):uint()
		return len >= 5 and ((b >= 0x80 and b <= 0x8f) or b == 0xde)
	end
	if t == 9 then return len >= 4 + KEY_BYTES + 4 and looks_like(tvb, off + 4 + KEY_BYTES) end
	return false
end

local function dissect_packet(tvb, pinfo, tree)
	local len = tvb:len()
	local t = tvb(0, 1):uint()
	local sub = tree:add(p, tvb(), "srmudp " .. (TYPES[t] or ("type " .. t)))
	sub:add(f.type, tvb(0, 1))
	sub:add(f.version, tvb(1, 1))
	sub:add_le(f.reserved, tvb(2, 2))
	local info = TYPES[t] or ("type " .. t)
	if SIZES[t] and len ~= SIZES[t] then
		sub:add_proto_expert_info(e_bad, string.format("%s must be %d bytes, is %d", info, SIZES[t], len))
		return info .. " (bad length)"
	end
	if t == 1 then
		sub:add_le(f.sender, tvb(4, 4))
		sub:add(f.ephemeral, tvb(8, 32))
		sub:add(f.enc_static, tvb(40, 48))
		sub:add(f.enc_payload, tvb(88, 56))
		sub:add(f.mac1, tvb(144, 16))
		sub:add(f.mac2, tvb(160, 16))
		sub:add(f.has_cookie, tvb(160, 16), not all_zero(tvb(160, 16)))
		info = string.format("HANDSHAKE_INIT sender=0x%08x", tvb(4, 4):le_uint())
	elseif t == 2 then
		sub:add_le(f.sender, tvb(4, 4))
		sub:add_le(f.receiver, tvb(8, 4))
		sub:add(f.ephemeral, tvb(12, 32))
		sub:add(f.enc_payload, tvb(44, 48))
		sub:add(f.mac1, tvb(92, 16))
		sub:add(f.mac2, tvb(108, 16))
		sub:add(f.has_cookie, tvb(108, 16), not all_zero(tvb(108, 16)))
		info = string.format("HANDSHAKE_RESP sender=0x%08x receiver=0x%08x",
			tvb(4, 4):le_uint(), tvb(8, 4):le_uint())
	elseif t == 3 then
		sub:add_le(f.receiver, tvb(4, 4))
		sub:add(f.nonce, tvb(8, 24))
		sub:add(f.enc_cookie, tvb(32, 32))
		info = string.format("COOKIE_REPLY receiver=0x%08x", tvb(4, 4):le_uint())
	elseif t == 5 then
		sub:add(f.mac1, tvb(12, 16))
		info = "PUNCH"
	elseif t == 4 then
		if len < DATA_MIN then
			sub:add_proto_expert_info(e_bad, "DATA shorter than 32 bytes")
			return "DATA (short)"
		end
		sub:add_le(f.receiver, tvb(4, 4))
		sub:add_le(f.pn, tvb(8, 8))
		local n = len - DATA_MIN
		sub:add(f.ciphertext_len, tvb(16, n), n):set_generated()
		if n > 0 then sub:add(f.ciphertext, tvb(16, n)) end
		sub:add(f.tag, tvb(len - 16, 16))
		info = string.format("DATA receiver=0x%08x pn=%s len=%d", tvb(4, 4):le_uint(),
			tostring(tvb(8, 8):le_uint64()), n)
	elseif t == 8 then
		info = dissect_rendezvous(tvb, pinfo, sub)
	elseif t == 9 then
		if len < 4 + KEY_BYTES + 4 then
			sub:add_proto_expert_info(e_bad, "RELAY too short")
			return "RELAY (short)"
		end
		local kr = tvb(4, KEY_BYTES)
		sub:add(f.relay_key, kr)
		sub:add(f.relay_fp, kr, b64url(kr):sub(1, 8))
		local inner = tvb(4 + KEY_BYTES):tvb("Relayed srmudp packet")
		local inner_info = "?"
		if looks_like(inner, 0) then
			inner_info = dissect_packet(inner, pinfo, sub)
		end
		info = string.format("RELAY peer=%s [%s]", b64url(kr):sub(1, 8), inner_info)
	end
	return info
end

function p.dissector(tvb, pinfo, tree)
	if tvb:len() < 4 then return 0 end
	pinfo.cols.protocol = "SRMUDP"
	local info = dissect_packet(tvb, pinfo, tree)
	pinfo.cols.info = info
	return tvb:len()
end

local function heuristic(tvb, pinfo, tree)
	if not looks_like(tvb, 0) then return false end
	p.dissector(tvb, pinfo, tree)
	return true
end

p:register_heuristic("udp", heuristic)

local bound_port = 0
function p.prefs_changed()
	local udp = DissectorTable.get("udp.port")
	if bound_port ~= 0 then udp:remove(bound_port, p) end
	bound_port = p.prefs.udp_port
	if bound_port ~= 0 then udp:add(bound_port, p) end
end

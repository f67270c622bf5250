-- luacheck's settings for pool's Lua scripts (pool/storage/lua/), as Redis runs them: Lua 5.1 with Redis's globals.
-- `make lint` checks each script assembled with its fragments (python -m pool.storage.scripts --dump), see the Makefile.
std = "lua51"
read_globals = { "redis", "cmsgpack", "cjson", "bit", "struct", "KEYS", "ARGV", "unpack", "table", "string", "math" }
-- Redis refuses a script that sets a global, so none may be defined.
allow_defined = false
allow_defined_top = false

// Package redistest runs throwaway redis-server processes for tests: one per call, on a
// free loopback port, with no persistence, stopped when the test ends. Tests that need
// Redis skip when redis-server is not installed, unless CI is set or
// RAWFLOW_REQUIRE_TOOLS=1, in which case they fail.
package redistest

// Package flight runs at most one call per key at a time and lets every caller wait on it
// without owning it: the gateway's on-demand origin fetches and the proxy's segment
// fetches share one fetch however many requests ask, and one requester going away never
// cancels the fetch the others wait on (unlike golang.org/x/sync/singleflight.Do, whose
// caller's context is the call's).
package flight

// Package httpx holds the HTTP helpers the gateway, its ingest and the proxy share: serving
// an object held in memory, the CORS policy of /live, bounded body reads, Content-Type by
// extension, and serving a handler on a listener for as long as a context lasts.
package httpx

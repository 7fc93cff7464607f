package portmap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/huin/goupnp"
)

// What UPnP reads from the LAN. Any device on the LAN may answer an SSDP search, with any
// LOCATION; goupnp then fetches that URL's device description and, for the device chosen,
// speaks SOAP to its control URL, with http.DefaultClient and no bound but the caller's
// context. Here every such request goes through lanClient: only to an address on this
// machine's side of a router (private, link-local or loopback, written as an address: a
// router's URLs are), and no body longer than maxUPnPBody (descriptions of real IGDs are
// 3–20 kB, SOAP answers under 2 kB).
const (
	maxUPnPBody = 256 << 10
	// lanTimeout bounds one request, whatever its caller's context says.
	lanTimeout = 3 * time.Second
)

// errNotLAN: a URL a device gave points off the LAN.
var errNotLAN = errors.New("not an address on the LAN")

// errUPnPBodyTooLarge: a device sent a body longer than maxUPnPBody.
var errUPnPBodyTooLarge = fmt.Errorf("UPnP answer longer than %d bytes", maxUPnPBody)

// lanClient is the HTTP client of every UPnP request (goupnp's descriptions through
// goupnp.HTTPClientDefault, see setLANClient; SOAP through each chosen service's client).
var lanClient = &http.Client{
	Timeout: lanTimeout,
	Transport: lanTransport{base: &http.Transport{
		Proxy:                  nil, // a LAN device is never reached through a proxy
		DialContext:            (&net.Dialer{Timeout: lanTimeout}).DialContext,
		ResponseHeaderTimeout:  lanTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		DisableKeepAlives:      true, // a handful of requests an hour
	}},
	CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		if len(via) >= 2 {
			return errors.New("too many redirects")
		}
		return nil
	},
}

// setLANClient makes lanClient goupnp's, once, before the first search.
var setLANClient = sync.OnceFunc(func() { goupnp.HTTPClientDefault = lanClient })

// lanTransport refuses requests off the LAN and bounds the bodies of the answers.
type lanTransport struct{ base http.RoundTripper }

func (t lanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, err := netip.ParseAddr(req.URL.Hostname())
	if err != nil || !onLAN(addr.Unmap()) {
		return nil, fmt.Errorf("UPnP: %q: %w", req.URL.Host, errNotLAN)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{rc: resp.Body, left: maxUPnPBody}
	return resp, nil
}

// onLAN reports whether a is an address a device on this machine's side of a router has.
func onLAN(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLoopback()
}

// boundedBody reads at most left bytes of rc; a longer body is an error.
type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 { // the bound is reached: anything more is too much
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n > 0 {
			return 0, errUPnPBodyTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

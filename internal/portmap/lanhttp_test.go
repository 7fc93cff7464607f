package portmap

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/soap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// description is a minimal IGD root device description; pad makes it longer.
func description(pad int) string {
	return `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>` +
		`<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><friendlyName>` +
		strings.Repeat("x", pad) + `</friendlyName></device></root>`
}

// A device description is read through lanClient (goupnp.HTTPClientDefault): one of normal
// size parses; one longer than maxUPnPBody is refused, however slowly or quickly it comes.
func TestUPnPDescriptionBounded(t *testing.T) {
	setLANClient()
	pad := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, description(pad))
	}))
	t.Cleanup(srv.Close)
	loc, err := url.Parse(srv.URL + "/rootDesc.xml")
	require.NoError(t, err)

	pad = 10 << 10
	root, err := goupnp.DeviceByURLCtx(t.Context(), loc)
	require.NoError(t, err)
	assert.Len(t, root.Device.FriendlyName, pad)

	pad = maxUPnPBody
	_, err = goupnp.DeviceByURLCtx(t.Context(), loc)
	require.Error(t, err)
	assert.Contains(t, err.Error(), errUPnPBodyTooLarge.Error(), "goupnp's errors keep only the text")
}

// A LOCATION or control URL off the LAN is never requested: any device on the LAN may
// answer a search with any URL.
func TestUPnPOffLANRefused(t *testing.T) {
	setLANClient()
	for _, u := range []string{"http://203.0.113.7:5000/rootDesc.xml", "http://example.com/rootDesc.xml", "http://[2001:db8::1]/d.xml"} {
		loc, err := url.Parse(u)
		require.NoError(t, err)
		_, err = goupnp.DeviceByURLCtx(t.Context(), loc)
		require.Error(t, err, u)
		assert.Contains(t, err.Error(), errNotLAN.Error(), u)
	}
	for _, a := range []string{"192.168.1.1", "10.0.0.1", "172.16.5.4", "169.254.1.1", "127.0.0.1", "fd00::1", "fe80::1"} {
		assert.True(t, onLAN(netip.MustParseAddr(a)), a)
	}
	for _, a := range []string{"100.64.0.1", "8.8.8.8", "2001:db8::1"} {
		assert.False(t, onLAN(netip.MustParseAddr(a)), a)
	}
}

// A SOAP answer through lanClient (as findUPnP sets on the service it chooses) is bounded
// too.
func TestUPnPSOAPBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		_, _ = io.WriteString(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>`+
			strings.Repeat("1", maxUPnPBody)+`</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + "/ctl")
	require.NoError(t, err)
	c := soap.NewSOAPClient(*u)
	c.HTTPClient = *lanClient
	var out struct{ NewExternalIPAddress string }
	err = c.PerformActionCtx(context.Background(), "urn:schemas-upnp-org:service:WANIPConnection:1", "GetExternalIPAddress", &struct{}{}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), errUPnPBodyTooLarge.Error())
}

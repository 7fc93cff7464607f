package portmap

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/soap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeIGD is an IGD 1 WAN connection service that refuses AddPortMapping with the codes in
// refuse, in order, and records the leases asked for.
type fakeIGD struct {
	refuse  []int
	leases  []uint32
	ports   []uint16
	deleted []uint16
}

func (f *fakeIGD) AddPortMappingCtx(_ context.Context, _ string, ext uint16, _ string, _ uint16, _ string, _ bool, _ string, lease uint32) error {
	f.leases, f.ports = append(f.leases, lease), append(f.ports, ext)
	if len(f.refuse) == 0 {
		return nil
	}
	code := f.refuse[0]
	f.refuse = f.refuse[1:]
	e := &soap.SOAPFaultError{FaultCode: "s:Client", FaultString: "UPnPError"}
	e.Detail.UPnPError.Errorcode = code
	return e
}

func (f *fakeIGD) DeletePortMappingCtx(_ context.Context, _ string, ext uint16, _ string) error {
	f.deleted = append(f.deleted, ext)
	return nil
}
func (f *fakeIGD) GetExternalIPAddressCtx(context.Context) (string, error) { return "11.0.0.2", nil }
func (f *fakeIGD) LocalAddr() net.IP                                       { return net.IPv4(192, 168, 1, 2) }
func (f *fakeIGD) GetServiceClient() *goupnp.ServiceClient                 { return &goupnp.ServiceClient{} }

// TestUPnPAddFallbacks: a taken port (718) gets another port with the lease asked for, never
// a permanent mapping; only a router that takes nothing but permanent mappings (725) gets
// one, reported with lifetime 0.
func TestUPnPAddFallbacks(t *testing.T) {
	taken := &fakeIGD{refuse: []int{718}}
	m, err := (&upnp{c: taken, local: "192.168.1.2"}).add(t.Context(), 8082, 8082, 2*time.Hour, "rawflow")
	require.NoError(t, err)
	assert.Equal(t, []uint32{7200, 7200}, taken.leases, "leased both times")
	assert.Equal(t, 2*time.Hour, m.Lifetime)
	assert.NotEqual(t, uint16(8082), m.External.Port())
	assert.Equal(t, taken.ports[1], m.External.Port())
	assert.Equal(t, netip.MustParseAddr("11.0.0.2"), m.External.Addr())

	permanentOnly := &fakeIGD{refuse: []int{725}}
	m, err = (&upnp{c: permanentOnly, local: "192.168.1.2"}).add(t.Context(), 8082, 8082, 2*time.Hour, "rawflow")
	require.NoError(t, err)
	assert.Equal(t, []uint32{7200, 0}, permanentOnly.leases)
	assert.Equal(t, time.Duration(0), m.Lifetime, "permanent")
	assert.Equal(t, uint16(8082), m.External.Port())

	refused := &fakeIGD{refuse: []int{718, 718}}
	_, err = (&upnp{c: refused, local: "192.168.1.2"}).add(t.Context(), 8082, 8082, 2*time.Hour, "rawflow")
	require.Error(t, err)
	assert.Equal(t, []uint32{7200, 7200}, refused.leases, "no permanent mapping asked for a taken port")
}

package swarm

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddrPolicy(t *testing.T) {
	cases := []struct {
		addr                     string
		public, private, loopbck bool
	}{
		{"8.8.8.8", true, true, true},
		{"2001:4860:4860::8888", true, true, true},
		{"192.168.1.10", false, true, true},
		{"10.0.0.1", false, true, true},
		{"100.64.3.4", false, true, true},
		{"fd00::1", false, true, true},
		{"127.0.0.1", false, false, true},
		{"::1", false, false, true},
		{"::ffff:127.0.0.1", false, false, true},
		{"169.254.169.254", false, false, false},
		{"fe80::1", false, false, false},
		{"0.0.0.0", false, false, false},
		{"0.1.2.3", false, false, false},
		{"::", false, false, false},
		{"224.0.0.1", false, false, false},
		{"255.255.255.255", false, false, false},
	}
	for _, c := range cases {
		a := netip.MustParseAddr(c.addr)
		assert.Equal(t, c.public, AddrPublic.Allows(a), "public %s", c.addr)
		assert.Equal(t, c.private, AddrPrivate.Allows(a), "private %s", c.addr)
		assert.Equal(t, c.loopbck, AddrLoopback.Allows(a), "loopback %s", c.addr)
	}
	assert.True(t, AddrLoopback.AllowsAddrPort("127.0.0.1:9000"))
	assert.False(t, AddrLoopback.AllowsAddrPort("127.0.0.1:0"))
	assert.False(t, AddrLoopback.AllowsAddrPort("localhost:9000"), "names are not dialled")
	for _, p := range []AddrPolicy{AddrPublic, AddrPrivate, AddrLoopback} {
		q, err := ParseAddrPolicy(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, q)
	}
	_, err := ParseAddrPolicy("lan")
	assert.ErrorContains(t, err, "want public, private or loopback")
}

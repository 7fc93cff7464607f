package swarm

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventReader(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteEvent(&b, EventHello, []byte(`{"peer_id":"x"}`)))
	b.WriteString(": ping\n\nid: 7\nretry: 10\n\n")
	require.NoError(t, WriteEvent(&b, EventSegment, []byte(`{"seq":3}`)))
	b.WriteString("event: plan\r\ndata: {}\r\n\r\n")
	require.Error(t, WriteEvent(&b, "x", []byte("two\nlines")))
	r := NewEventReader(&b)
	for _, want := range []Event{{EventHello, []byte(`{"peer_id":"x"}`)}, {EventSegment, []byte(`{"seq":3}`)}, {EventPlan, []byte(`{}`)}} {
		got, err := r.Next()
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := r.Next()
	assert.ErrorIs(t, err, io.EOF)

	_, err = NewEventReader(strings.NewReader("data: " + strings.Repeat("x", MaxEventBytes+10) + "\n\n")).Next()
	assert.ErrorIs(t, err, ErrEventTooLarge)
	_, err = NewEventReader(strings.NewReader("event: hello\ndata: {}")).Next()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "a stream cut mid-line")
}

func TestSubscriptionQuery(t *testing.T) {
	s := Subscription{Channel: "tv", Renditions: []string{"r1", "r0"}, Addr: ":7000", Group: "paris", Cert: strings.Repeat("ab", 32), NAT: NATSymmetric}
	got, err := ParseSubscription(s.Query())
	require.NoError(t, err)
	s.Renditions = []string{"r0", "r1"}
	assert.Equal(t, s, got)
	leech, err := ParseSubscription(Subscription{Channel: "tv", Leech: true}.Query())
	require.NoError(t, err)
	assert.True(t, leech.Leech)
	iceOnly, err := ParseSubscription(Subscription{Channel: "tv", ICE: true, Cert: strings.Repeat("ab", 32)}.Query())
	require.NoError(t, err)
	assert.Empty(t, iceOnly.Cert, "no neighbour port: no certificate")
	for name, bad := range map[string]Subscription{
		"channel":         {Channel: "t v", Addr: ":1"},
		"rendition":       {Channel: "tv", Renditions: []string{"x"}, Addr: ":1"},
		"too many":        {Channel: "tv", Renditions: []string{"r0", "r1", "r2", "r3", "r4"}, Addr: ":1"},
		"media and r0":    {Channel: "tv", Renditions: []string{"", "r0"}, Addr: ":1"},
		"addr":            {Channel: "tv"},
		"port":            {Channel: "tv", Addr: ":0"},
		"host name":       {Channel: "tv", Addr: "example.com:80"},
		"group":           {Channel: "tv", Addr: ":1", Group: "a b"},
		"long group name": {Channel: "tv", Addr: ":1", Group: strings.Repeat("g", 65)},
		"cert":            {Channel: "tv", Addr: ":1", Cert: "not-a-fingerprint"},
		"cert upper case": {Channel: "tv", Addr: ":1", Cert: strings.Repeat("AB", 32)},
		"nat":             {Channel: "tv", Addr: ":1", NAT: "full-cone"},
	} {
		_, err := ParseSubscription(bad.Query())
		assert.ErrorIs(t, err, ErrBadRequest, name)
	}
}

// A peer's cells are its group's, or its site's within its group when it has one; a site
// is an address.
func TestCellGroup(t *testing.T) {
	assert.Equal(t, "paris", Peer{Group: "paris", PublicIP: "203.0.113.9"}.CellGroup())
	assert.Equal(t, "paris@203.0.113.9", Peer{Group: "paris", Site: "203.0.113.9"}.CellGroup())
	assert.Equal(t, []cellKey{{rendition: "r0", group: "@203.0.113.9"}}, cellsOf(Peer{Site: "203.0.113.9", Renditions: []string{"r0"}}))
	assert.NoError(t, checkSubscribe(Peer{Channel: "tv", ID: strings.Repeat("a", 32), Site: "2001:db8::1"}, nil))
	assert.ErrorIs(t, checkSubscribe(Peer{Channel: "tv", ID: strings.Repeat("a", 32), Site: "my-site"}, nil), ErrBadRequest)
}

func TestAuth(t *testing.T) {
	id := strings.Repeat("a", 32)
	gotID, token, ok := ParseAuth(FormatAuth(id, "123-abc"))
	require.True(t, ok)
	assert.Equal(t, id, gotID)
	assert.Equal(t, "123-abc", token)
	for _, bad := range []string{"", "Bearer x", AuthScheme + " short tok", AuthScheme + " " + id, AuthScheme + " " + id + " " + strings.Repeat("t", 200)} {
		_, _, ok := ParseAuth(bad)
		assert.False(t, ok, bad)
	}
}

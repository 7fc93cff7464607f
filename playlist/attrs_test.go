package playlist

import (
	"strings"
	"testing"

	"github.com/grafov/m3u8"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attrCases are attribute lists parseAttrs must read; grafov's DecodeAttributeList, which
// the project used before, serves as an oracle for the values.
var attrCases = []struct {
	in   string
	want attrs
}{
	{`METHOD=AES-128,URI="https://k.example/k?a=1,b=2",IV=0x1F`, attrs{
		"METHOD": {value: "AES-128"}, "URI": {value: "https://k.example/k?a=1,b=2", quoted: true}, "IV": {value: "0x1F"},
	}},
	{`ID="ad,1",CLASS="com.example,ads",START-DATE="2024-05-01T12:00:00Z",DURATION=30.5`, attrs{
		"ID": {value: "ad,1", quoted: true}, "CLASS": {value: "com.example,ads", quoted: true},
		"START-DATE": {value: "2024-05-01T12:00:00Z", quoted: true}, "DURATION": {value: "30.5"},
	}},
	{`URI="main.mp4",BYTERANGE="720@0"`, attrs{"URI": {value: "main.mp4", quoted: true}, "BYTERANGE": {value: "720@0", quoted: true}}},
	{`METHOD=AES-128, URI="k"`, attrs{"METHOD": {value: "AES-128"}, "URI": {value: "k", quoted: true}}},
	{`X="a=b,c=d"`, attrs{"X": {value: "a=b,c=d", quoted: true}}},
}

func TestParseAttrs(t *testing.T) {
	for _, tc := range attrCases {
		got, err := parseAttrs(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		oracle := m3u8.DecodeAttributeList(tc.in)
		require.Len(t, oracle, len(got), tc.in)
		for k, v := range got {
			assert.Equal(t, oracle[k], v.value, "%s: grafov disagrees on %s", tc.in, k)
		}
	}
	got, err := parseAttrs(`X=""`)
	require.NoError(t, err)
	assert.Equal(t, attrs{"X": {quoted: true}}, got, "an empty quoted-string (grafov cannot read it)")
}

func TestParseAttrsErrors(t *testing.T) {
	for _, in := range []string{
		`METHOD`, `=1`, `method=AES-128`, `A=1,A=2`, `A="x`, `A=1,`, `A=1,,B=2`, `A=x"y"`, `A=`, `A="x"B=1`,
		`A=1 ,B=2`, "A=\"x\ny\"",
	} {
		_, err := parseAttrs(in)
		assert.ErrorIs(t, err, ErrMalformed, "%q", in)
	}
}

func FuzzParseAttrs(f *testing.F) {
	for _, tc := range attrCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := parseAttrs(in)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		// What parsed writes back in canonical form and parses to the same attributes.
		var parts []string
		for k, v := range a {
			if v.quoted {
				parts = append(parts, k+`="`+v.value+`"`)
			} else {
				parts = append(parts, k+"="+v.value)
			}
		}
		b, err := parseAttrs(strings.Join(parts, ","))
		require.NoError(t, err)
		require.Equal(t, a, b)
	})
}

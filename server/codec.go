package server

import (
	"errors"

	"github.com/cairnkv/cairn/internal/codec"
)

// errEncoding is wrapped by every decoding failure of server's encodings
// (the member and auth registries, membership and auth entries, a conf
// change's context); the decoders wrap it again with what was decoded.
var errEncoding = errors.New("bad encoding")

// maxEncodedField bounds one length-prefixed field of those encodings:
// they hold names, URLs, password hashes and key patterns.
const maxEncodedField = 1 << 20

func appendString(b []byte, s string) []byte { return codec.AppendString(b, s) }

func appendStrings(b []byte, ss []string) []byte { return codec.AppendStrings(b, ss) }

// decoder reads server's encodings with the rules every Cairn encoding
// shares (internal/codec): minimal uvarints, bounded fields; the first
// error sticks.
type decoder struct{ *codec.Reader }

func newDecoder(b []byte) decoder {
	return decoder{codec.NewReader(b, maxEncodedField, errEncoding)}
}

func (d decoder) byte() byte        { return d.Byte() }
func (d decoder) uvarint() uint64   { return d.Uvarint() }
func (d decoder) string() string    { return d.String() }
func (d decoder) strings() []string { return d.Strings() }

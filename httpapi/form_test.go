package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// formCase is a request whose parameters readKeyForm and ParseForm must
// read alike.
type formCase struct {
	method, ctype, query, body string
	maxBytes                   bool // the body is a MaxBytesReader, as limiter.requests makes it
	nilBody                    bool
}

func (c formCase) request() *http.Request {
	target := "/v2/keys/k"
	if c.query != "" {
		target += "?" + c.query
	}
	r := httptest.NewRequest(c.method, "/v2/keys/k", strings.NewReader(c.body))
	r.URL.RawQuery = c.query // as sent, even where NewRequest would refuse it
	r.RequestURI = target
	if c.ctype != "" {
		r.Header.Set("Content-Type", c.ctype)
	}
	if c.maxBytes {
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<30)
	}
	if c.nilBody {
		r.Body = nil
	}
	return r
}

// checkKeyForm compares readKeyForm with ParseForm on the same request:
// the same error text, and for every keys API parameter the same
// presence and first value.
func checkKeyForm(t *testing.T, c formCase) {
	t.Helper()
	want := c.request()
	werr := want.ParseForm()
	var f keyForm
	gerr := readKeyForm(c.request(), &f)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("%+v: error %v, ParseForm's %v", c, gerr, werr)
	}
	if werr != nil {
		return // the request is refused whatever the values
	}
	for p, name := range keyParamNames {
		_, has := want.Form[name]
		if f.has(keyParam(p)) != has || f.get(keyParam(p)) != want.Form.Get(name) {
			t.Fatalf("%+v: %s = %q (sent %v), ParseForm's %q (sent %v)", c, name,
				f.get(keyParam(p)), f.has(keyParam(p)), want.Form.Get(name), has)
		}
	}
}

func TestKeyFormReadsAsParseForm(t *testing.T) {
	many := strings.Repeat("x=1&", 100) + "value=many"
	tooMany := strings.Repeat("&", 10000) + "value=x"
	big := "value=" + strings.Repeat("v", 10<<20)
	cases := []formCase{
		{method: "GET"},
		{method: "GET", query: "recursive=true&sorted=true"},
		{method: "GET", query: "wait=true&waitIndex=7&recursive=true&stream=true&quorum=false"},
		{method: "GET", query: "serializable=true", body: "value=ignored", ctype: formURLEncoded},
		{method: "PUT", ctype: formURLEncoded, body: "value=" + strings.Repeat("v", 256)},
		{method: "PUT", ctype: formURLEncoded, body: "value=a&value=b", query: "value=c&ttl=5"},
		{method: "PUT", ctype: formURLEncoded, body: "ttl=&prevExist=false", query: "ttl=5&prevExist=true"},
		{method: "PUT", ctype: formURLEncoded, body: "v%61lue=x+y%20z&%70revValue=%E2%82%AC"},
		{method: "PUT", ctype: formURLEncoded, body: "value=%zz"},
		{method: "PUT", ctype: formURLEncoded, body: "value=%4"},
		{method: "PUT", ctype: formURLEncoded, body: "%zz=1&value=ok"},
		{method: "PUT", ctype: formURLEncoded, body: "other=%zz&value=ok"},
		{method: "PUT", ctype: formURLEncoded, body: "value=ok", query: "other=%g0"},
		{method: "PUT", ctype: formURLEncoded, body: "value=a;b"},
		{method: "PUT", ctype: formURLEncoded, body: "value=%zz&x=a;b"},
		{method: "PUT", ctype: formURLEncoded, body: "x=a;b&value=%zz"},
		{method: "PUT", ctype: formURLEncoded, body: "value=ok", query: "a;b"},
		{method: "PUT", ctype: formURLEncoded, body: "&&value&=x&==&dir"},
		{method: "PUT", ctype: formURLEncoded, body: "refresh=true&ttl=9&prevLock=l&prevToken=3"},
		{method: "PUT", ctype: formURLEncoded + "; charset=utf-8", body: "value=cs"},
		{method: "PUT", ctype: "Application/X-WWW-Form-URLEncoded", body: "value=case"},
		{method: "PUT", ctype: formURLEncoded + "; =bad", body: "value=badparam"},
		{method: "PUT", ctype: "text/plain", body: "value=text", query: "value=q"},
		{method: "PUT", ctype: "multipart/form-data; boundary=x", body: "value=multi"},
		{method: "PUT", ctype: "no slash", body: "value=bad"},
		{method: "PUT", body: "value=no-type", query: "dir=true"},
		{method: "PUT", ctype: formURLEncoded, nilBody: true, query: "value=q"},
		{method: "POST", ctype: formURLEncoded, body: "value=posted&ttl=3"},
		{method: "PATCH", ctype: formURLEncoded, body: "value=patched"},
		{method: "DELETE", ctype: formURLEncoded, body: "recursive=true", query: "dir=true"},
		{method: "HEAD", query: "recursive=true"},
		{method: "PUT", ctype: formURLEncoded, body: many, query: many},
		{method: "GET", query: tooMany},
		{method: "PUT", ctype: formURLEncoded, body: tooMany, query: "value=q"},
		{method: "PUT", ctype: formURLEncoded, body: big},
		{method: "PUT", ctype: formURLEncoded, body: big, maxBytes: true},
	}
	for _, c := range cases {
		checkKeyForm(t, c)
	}
}

// A body that fails to read fails the form with the reader's error, as
// ParseForm does.
func TestKeyFormBodyReadError(t *testing.T) {
	r := httptest.NewRequest("PUT", "/v2/keys/k?value=q", nil)
	r.Header.Set("Content-Type", formURLEncoded)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("value=part"), errReader{}))
	var f keyForm
	if err := readKeyForm(r, &f); err == nil || err.Error() != "read failed" {
		t.Fatalf("error %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("read failed") }

func FuzzKeyForm(f *testing.F) {
	f.Add("PUT", formURLEncoded, "ttl=5", "value=v&prevExist=false")
	f.Add("GET", "", "recursive=true&v%61lue=%41+b", "")
	f.Add("POST", formURLEncoded+"; charset=x", "a;b", "%zz=1")
	f.Fuzz(func(t *testing.T, method, ctype, query, body string) {
		switch method {
		case "GET", "PUT", "POST", "PATCH", "DELETE", "HEAD":
		default:
			return
		}
		checkKeyForm(t, formCase{method: method, ctype: ctype, query: query, body: body})
	})
}

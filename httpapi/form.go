package httpapi

import (
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
)

// A keys request's parameters are read from its query string and form
// body as Request.ParseForm reads them, with the same values and the same
// errors, but without building url.Values: only the first value of each
// parameter the keys API knows is kept, in a keyForm that lives on the
// stack, and a value that needs no unescaping is not copied.

// keyParam numbers the parameters of the keys API.
type keyParam uint8

const (
	pValue keyParam = iota
	pPrevValue
	pPrevIndex
	pPrevExist
	pTTL
	pRefresh
	pDir
	pRecursive
	pSorted
	pWait
	pWaitIndex
	pStream
	pQuorum
	pSerializable
	pNoValueOnSuccess
	pPrevLock
	pPrevToken
	numKeyParams
)

// keyParamNames are the parameters' names, by keyParam.
var keyParamNames = [numKeyParams]string{
	pValue: "value", pPrevValue: "prevValue", pPrevIndex: "prevIndex", pPrevExist: "prevExist",
	pTTL: "ttl", pRefresh: "refresh", pDir: "dir", pRecursive: "recursive", pSorted: "sorted",
	pWait: "wait", pWaitIndex: "waitIndex", pStream: "stream", pQuorum: "quorum",
	pSerializable: "serializable", pNoValueOnSuccess: "noValueOnSuccess", pPrevLock: "prevLock",
	pPrevToken: "prevToken",
}

// keyParamOf returns the parameter called name, if the keys API has one.
func keyParamOf(name string) (keyParam, bool) {
	for p, n := range keyParamNames {
		if n == name {
			return keyParam(p), true
		}
	}
	return 0, false
}

// keyForm is the first value of each keys API parameter a request sent:
// r.Form.Get and r.Form.Has after ParseForm.
type keyForm struct {
	vals [numKeyParams]string
	sent uint32 // bit p: parameter p was sent
}

func (f *keyForm) has(p keyParam) bool   { return f.sent&(1<<p) != 0 }
func (f *keyForm) get(p keyParam) string { return f.vals[p] }

// setFirst records v as p's value unless p has one already.
func (f *keyForm) setFirst(p keyParam, v string) {
	if !f.has(p) {
		f.vals[p], f.sent = v, f.sent|1<<p
	}
}

// formURLEncoded is the media type of a form body.
const formURLEncoded = "application/x-www-form-urlencoded"

// maxBytesReaderType is the type of http.MaxBytesReader's reader, whose
// bodies ParseForm reads without its own 10 MiB cap.
var maxBytesReaderType = reflect.TypeOf(http.MaxBytesReader(nil, http.NoBody, 0))

// maxFormBytes is ParseForm's cap on a form body it reads otherwise.
const maxFormBytes = 10 << 20

// readKeyForm reads r's parameters as r.ParseForm would and returns the
// error it would return: the form body's first (POST, PUT and PATCH
// only), then the query string's. A parameter sent in both takes the
// body's value.
func readKeyForm(r *http.Request, f *keyForm) error {
	var err error
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		err = f.readBody(r)
	}
	if r.URL != nil {
		if e := f.add(r.URL.RawQuery); err == nil {
			err = e
		}
	}
	return err
}

// readBody reads a form body as ParseForm does: only with the media type
// application/x-www-form-urlencoded (the Content-Type's parse error is
// the error even then), at most 10 MiB unless the body is a
// MaxBytesReader.
func (f *keyForm) readBody(r *http.Request) error {
	if r.Body == nil {
		return errors.New("missing form body")
	}
	var err error
	if ct := r.Header.Get("Content-Type"); ct != formURLEncoded { // the usual one, parsed
		if ct == "" {
			ct = "application/octet-stream"
		}
		if ct, _, err = mime.ParseMediaType(ct); ct != formURLEncoded {
			return err
		}
	}
	var rd io.Reader = r.Body
	limit := int64(math.MaxInt64)
	if reflect.TypeOf(r.Body) != maxBytesReaderType {
		limit = maxFormBytes
		rd = io.LimitReader(r.Body, limit+1)
	}
	body, e := readBody(rd, r.ContentLength)
	if e != nil {
		if err == nil {
			err = e
		}
		return err
	}
	if int64(len(body)) > limit {
		return errors.New("http: POST too large")
	}
	if e := f.add(body); err == nil {
		err = e
	}
	return err
}

// readBody reads rd to its end into a pooled buffer (one of size+1 bytes
// for a declared size, so that its end is seen without growing it) and
// returns what it read as a string: one copy.
func readBody(rd io.Reader, size int64) (string, error) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if size > 0 && size < maxBodyHint && int(size) >= cap(b) {
		b = make([]byte, 0, size+1)
	}
	var err error
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		err = nil
	}
	s := string(b)
	*bp = b[:0]
	bufPool.Put(bp)
	return s, err
}

// maxBodyHint bounds the buffer made from a declared body size; a larger
// body grows it as it is read.
const maxBodyHint = 1 << 20

// maxFastParams is the number of parameters past which a query string or
// a form body is handed to url.ParseQuery, so that its bound on the
// number of parameters (10,000, or GODEBUG's urlmaxqueryparams) applies.
// A urlmaxqueryparams below this is not applied to the keys API.
const maxFastParams = 64

// errSemicolon is url.ParseQuery's error for a parameter holding ";".
var errSemicolon = errors.New("invalid semicolon separator in query")

// add reads the parameters of a query string or form body as
// url.ParseQuery does, keeping the first value of each keys API
// parameter not already set. The error is url.ParseQuery's: the
// semicolon error if a parameter holds ";", else the first unescaping
// error.
func (f *keyForm) add(q string) error {
	if strings.Count(q, "&") >= maxFastParams {
		vs, err := url.ParseQuery(q)
		for p, name := range keyParamNames {
			if v, ok := vs[name]; ok {
				f.setFirst(keyParam(p), v[0])
			}
		}
		return err
	}
	var err error
	semicolon := false
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if strings.IndexByte(pair, ';') >= 0 {
			semicolon = true
			continue
		}
		if pair == "" {
			continue
		}
		name, v, _ := strings.Cut(pair, "=")
		name, e := url.QueryUnescape(name)
		if e == nil {
			v, e = url.QueryUnescape(v)
		}
		if e != nil {
			if err == nil {
				err = e
			}
			continue
		}
		if p, ok := keyParamOf(name); ok {
			f.setFirst(p, v)
		}
	}
	if semicolon {
		return errSemicolon
	}
	return err
}

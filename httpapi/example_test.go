package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// A key written with PUT and read back with GET, as curl or an etcd v2
// client would. The clock is fixed so that the output is stable.
func ExampleNewHandler() {
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	be := server.NewLocal(store.New(store.DefaultEventHistory), 0x1234, clock)
	defer be.Close()
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Config{Backend: be, Now: clock}))
	defer srv.Close()

	show := func(req *http.Request) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s X-Etcd-Index: %s\n%s", resp.Status, resp.Header.Get("X-Etcd-Index"), body)
	}

	put, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/keys/message", strings.NewReader("value=Hello <world>"))
	put.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	show(put)

	get, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/keys/message", nil)
	show(get)

	missing, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/keys/nothing", nil)
	show(missing)

	// Output:
	// 201 Created X-Etcd-Index: 1
	// {"action":"set","node":{"key":"/message","value":"Hello \u003cworld\u003e","modifiedIndex":1,"createdIndex":1}}
	// 200 OK X-Etcd-Index: 1
	// {"action":"get","node":{"key":"/message","value":"Hello \u003cworld\u003e","modifiedIndex":1,"createdIndex":1}}
	// 404 Not Found X-Etcd-Index: 1
	// {"errorCode":100,"message":"Key not found","cause":"/nothing","index":1}
}

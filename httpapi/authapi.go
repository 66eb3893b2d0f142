package httpapi

import (
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/cairnkv/cairn/server"
)

const authPrefix = "/v2/auth"

// maxAuthBody bounds a user or role JSON body; a longer one is refused as
// invalid JSON.
const maxAuthBody = 1 << 20

// authHandler serves /v2/auth: users, roles and the enabled flag, as etcd
// 3.4 answers them (API.md §5). While auth is disabled every endpoint is
// open; once enabled, all but GET /v2/auth/enable need a user with the
// root role.
type authHandler struct {
	be    Backend
	auth  Auth
	authz *authorizer
	guest server.GuestAccess
}

// allowMethod answers 405 with etcd's Allow list unless the method is one
// of ms.
func allowMethod(w http.ResponseWriter, r *http.Request, ms ...string) bool {
	for _, m := range ms {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// begin checks the method and the caller (root unless open is true), then
// sets the headers every answer past that point carries.
func (h *authHandler) begin(w http.ResponseWriter, r *http.Request, open bool, ms ...string) bool {
	if !allowMethod(w, r, ms...) {
		return false
	}
	if !open && !h.authz.rootAccess(r) {
		writeNoAuth(w)
		return false
	}
	w.Header().Set("X-Etcd-Cluster-Id", strconv.FormatUint(h.be.Status().ClusterID, 16))
	w.Header().Set("Content-Type", "application/json")
	return true
}

// enable serves /v2/auth/enable: GET is open to all; PUT enables, DELETE
// disables.
func (h *authHandler) enable(w http.ResponseWriter, r *http.Request) {
	open := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !h.begin(w, r, open, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	var err error
	switch r.Method {
	case http.MethodGet:
		writeJSONLine(w, http.StatusOK, struct {
			Enabled bool `json:"enabled"`
		}{h.auth.AuthState().Enabled()})
		return
	case http.MethodPut:
		err = h.auth.EnableAuth(r.Context(), h.guest)
	case http.MethodDelete:
		err = h.auth.DisableAuth(r.Context())
	}
	if err != nil {
		writeAuthError(w, err, r.Method)
	}
}

// users serves /v2/auth/users and /v2/auth/users/NAME.
func (h *authHandler) users(w http.ResponseWriter, r *http.Request) {
	name, ok := authSubject(w, r)
	if !ok {
		return
	}
	if name == "" {
		if h.begin(w, r, false, http.MethodGet) {
			h.listUsers(w)
		}
		return
	}
	if !h.begin(w, r, false, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	switch r.Method {
	case http.MethodGet:
		st := h.auth.AuthState()
		u, ok := st.User(name)
		if !ok {
			writeAuthError(w, &server.AuthError{Kind: server.AuthUserNotFound, Name: name}, r.Method)
			return
		}
		out := userWithRolesJSON{User: u.Name}
		for _, rn := range u.Roles {
			role, ok := st.Role(rn)
			if !ok {
				writeAuthError(w, &server.AuthError{Kind: server.AuthRoleNotFound, Name: rn}, r.Method)
				return
			}
			out.Roles = append(out.Roles, roleOut(role))
		}
		writeJSONLine(w, http.StatusOK, out)
	case http.MethodPut:
		body, ok := readAuthBody(w, r)
		if !ok {
			return
		}
		in, ok := parseUserJSON(body)
		if !ok {
			writeMessage(w, http.StatusBadRequest, "Invalid JSON in request body.")
			return
		}
		if in.User != name {
			writeMessage(w, http.StatusBadRequest, "User JSON name does not match the name in the URL")
			return
		}
		c := server.UserChange{Name: name, Password: in.Password, Roles: in.Roles, Grant: in.Grant, Revoke: in.Revoke}
		switch {
		case len(in.Grant) == 0 && len(in.Revoke) == 0 && len(in.Roles) != 0:
			c.Mode = server.UserCreate
		case len(in.Grant) == 0 && len(in.Revoke) == 0:
			c.Mode = server.UserCreateOrUpdate
		case len(in.Roles) != 0:
			writeMessage(w, http.StatusBadRequest, "User JSON contains both roles and grant/revoke")
			return
		default:
			c.Mode, c.Roles = server.UserUpdate, nil
		}
		u, created, err := h.auth.PutUser(r.Context(), c)
		if err != nil {
			writeAuthError(w, err, r.Method)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSONLine(w, status, userJSON{User: u.Name, Roles: u.Roles})
	case http.MethodDelete:
		if err := h.auth.DeleteUser(r.Context(), name); err != nil {
			writeAuthError(w, err, r.Method)
		}
	}
}

func (h *authHandler) listUsers(w http.ResponseWriter) {
	st := h.auth.AuthState()
	var out struct {
		Users []userWithRolesJSON `json:"users"`
	}
	for _, u := range st.Users() {
		uw := userWithRolesJSON{User: u.Name}
		for _, rn := range u.Roles {
			if role, ok := st.Role(rn); ok { // roles that are gone are skipped
				uw.Roles = append(uw.Roles, roleOut(role))
			}
		}
		out.Users = append(out.Users, uw)
	}
	writeJSONLine(w, http.StatusOK, out)
}

// roles serves /v2/auth/roles and /v2/auth/roles/NAME.
func (h *authHandler) roles(w http.ResponseWriter, r *http.Request) {
	name, ok := authSubject(w, r)
	if !ok {
		return
	}
	if name == "" {
		if h.begin(w, r, false, http.MethodGet) {
			var out struct {
				Roles []roleJSON `json:"roles"`
			}
			for _, role := range h.auth.AuthState().Roles() {
				out.Roles = append(out.Roles, roleOut(role))
			}
			writeJSONLine(w, http.StatusOK, out)
		}
		return
	}
	if !h.begin(w, r, false, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	switch r.Method {
	case http.MethodGet:
		role, ok := h.auth.AuthState().Role(name)
		if !ok {
			writeAuthError(w, &server.AuthError{Kind: server.AuthRoleNotFound, Name: name}, r.Method)
			return
		}
		writeJSONLine(w, http.StatusOK, roleOut(role))
	case http.MethodPut:
		body, ok := readAuthBody(w, r)
		if !ok {
			return
		}
		in, ok := parseRoleJSON(body)
		if !ok {
			writeMessage(w, http.StatusBadRequest, "Invalid JSON in request body.")
			return
		}
		if in.Role != name {
			writeMessage(w, http.StatusBadRequest, "Role JSON name does not match the name in the URL")
			return
		}
		if in.Grant.isEmpty() && in.Revoke.isEmpty() {
			err := h.auth.CreateRole(r.Context(), server.AuthRole{Name: name, Read: in.Permissions.Read, Write: in.Permissions.Write})
			if err != nil {
				writeAuthError(w, err, r.Method)
				return
			}
			// etcd echoes what it was sent, an empty grant or revoke too.
			out := roleOut(server.AuthRole{Name: name, Read: in.Permissions.Read, Write: in.Permissions.Write})
			out.Grant, out.Revoke = in.Grant.out(), in.Revoke.out()
			writeJSONLine(w, http.StatusCreated, out)
			return
		}
		if !in.Permissions.isEmpty() {
			writeMessage(w, http.StatusBadRequest, "Role JSON contains both permissions and grant/revoke")
			return
		}
		role, err := h.auth.UpdateRole(r.Context(), server.RoleChange{Name: name, Grant: in.Grant.perms(), Revoke: in.Revoke.perms()})
		if err != nil {
			writeAuthError(w, err, r.Method)
			return
		}
		writeJSONLine(w, http.StatusOK, roleOut(role))
	case http.MethodDelete:
		if err := h.auth.DeleteRole(r.Context(), name); err != nil {
			writeAuthError(w, err, r.Method)
		}
	}
}

// authSubject returns the user or role a /v2/auth/users or /roles path
// names ("" for the collection). A path with more segments is answered
// 400 "Invalid path", before any credentials are checked, as etcd does.
func authSubject(w http.ResponseWriter, r *http.Request) (string, bool) {
	pieces := strings.Split(path.Clean(strings.TrimPrefix(r.URL.Path, authPrefix)), "/")
	switch len(pieces) {
	case 2:
		return "", true
	case 3:
		return pieces[2], true
	}
	writeMessage(w, http.StatusBadRequest, "Invalid path")
	return "", false
}

// readAuthBody reads a PUT body of at most maxAuthBody bytes; a longer
// one, or a failed read, is answered as invalid JSON.
func readAuthBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAuthBody))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid JSON in request body.")
		return nil, false
	}
	return b, true
}

// writeAuthError answers a refused auth change with etcd's status and
// message (API.md §5.2); other errors (a timeout, a stopped member) are
// 500.
func writeAuthError(w http.ResponseWriter, err error, method string) {
	var ae *server.AuthError
	if !errors.As(err, &ae) {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error: "+err.Error())
		return
	}
	status, msg := http.StatusBadRequest, ""
	switch ae.Kind {
	case server.AuthUserExists:
		status, msg = http.StatusConflict, "User "+ae.Name+" already exists."
	case server.AuthUserNotFound:
		status, msg = http.StatusNotFound, "User "+ae.Name+" does not exist."
		if method == http.MethodDelete {
			msg = "User " + ae.Name + " does not exist"
		}
	case server.AuthRoleExists:
		status, msg = http.StatusConflict, "Role "+ae.Name+" already exists."
	case server.AuthRoleNotFound:
		status, msg = http.StatusNotFound, "Role "+ae.Name+" does not exist."
		if method == http.MethodDelete {
			msg = "Role " + ae.Name + " doesn't exist."
		}
	case server.AuthRootRoleImmutable:
		status, msg = http.StatusForbidden, "Cannot modify role "+server.RootRoleName+": is root role."
	case server.AuthRootUserDelete:
		status, msg = http.StatusForbidden, "Cannot delete root user while auth is enabled."
	case server.AuthEmptyPassword:
		msg = "Cannot create user " + ae.Name + " with an empty password"
	case server.AuthPasswordTooLong:
		msg = "Password of user " + ae.Name + " is longer than 72 bytes"
	case server.AuthNoRootUser:
		status, msg = http.StatusConflict, "No root user available, please create one"
	case server.AuthAlreadyEnabled:
		status, msg = http.StatusConflict, "already enabled"
	case server.AuthAlreadyDisabled:
		status, msg = http.StatusConflict, "already disabled"
	case server.AuthDuplicateRole:
		status, msg = http.StatusConflict, "Granting duplicate role "+ae.Item+" for user "+ae.Name
	case server.AuthUngrantedRole:
		status, msg = http.StatusConflict, "Revoking ungranted role "+ae.Item+" for user "+ae.Name
	case server.AuthDuplicateRead:
		status, msg = http.StatusConflict, "Granting duplicate read permission "+ae.Item
	case server.AuthDuplicateWrite:
		status, msg = http.StatusConflict, "Granting duplicate write permission "+ae.Item
	case server.AuthUserNotUpdated:
		msg = "User not updated. Use grant/revoke/password to update the user."
	case server.AuthRoleNotUpdated:
		msg = "Role not updated. Use grant/revoke to update the role."
	default:
		msg = strings.TrimPrefix(ae.Error(), "auth: ")
	}
	writeMessage(w, status, "auth: "+msg)
}

// The JSON etcd answers (field order and omissions as its structs).
type (
	rwJSON struct {
		Read  []string `json:"read"`
		Write []string `json:"write"`
	}
	permsJSON struct {
		KV rwJSON `json:"kv"`
	}
	roleJSON struct {
		Role        string     `json:"role"`
		Permissions permsJSON  `json:"permissions"`
		Grant       *permsJSON `json:"grant,omitempty"`
		Revoke      *permsJSON `json:"revoke,omitempty"`
	}
	userJSON struct {
		User  string   `json:"user"`
		Roles []string `json:"roles"`
	}
	userWithRolesJSON struct {
		User  string     `json:"user"`
		Roles []roleJSON `json:"roles,omitempty"`
	}
)

func roleOut(r server.AuthRole) roleJSON {
	return roleJSON{Role: r.Name, Permissions: permsJSON{KV: rwJSON{Read: r.Read, Write: r.Write}}}
}

// Request bodies, read as encoding/json would read them into etcd's
// structs: the first JSON value (what follows it is ignored), member names
// matched without regard to case, a later duplicate winning (and objects
// merging into what an earlier duplicate set), null leaving a field as it
// was (or making a list or a pointer nil), a value of the wrong type
// making the whole body invalid.
type (
	userBody struct {
		User, Password       string
		Roles, Grant, Revoke []string
	}
	permsBody struct {
		Read, Write []string
	}
	roleBody struct {
		Role          string
		Permissions   permsBody
		Grant, Revoke *permsBody
	}
)

func (p *permsBody) isEmpty() bool { return p == nil || len(p.Read) == 0 && len(p.Write) == 0 }

func (p *permsBody) perms() *server.AuthPerms {
	if p == nil {
		return nil
	}
	return &server.AuthPerms{Read: p.Read, Write: p.Write}
}

func (p *permsBody) out() *permsJSON {
	if p == nil {
		return nil
	}
	return &permsJSON{KV: rwJSON{Read: p.Read, Write: p.Write}}
}

// firstValue returns the first JSON value of b, or false if b does not
// start with a complete, valid one.
func firstValue(b []byte) (gjson.Result, bool) {
	s := strings.TrimLeft(string(b), " \t\r\n")
	if s == "" {
		return gjson.Result{}, false
	}
	if strings.HasPrefix(s, "null") {
		return gjson.Result{Type: gjson.Null, Raw: "null"}, true
	}
	if s[0] != '{' {
		return gjson.Result{}, false // any other type is a type error for a struct
	}
	raw, ok := objectPrefix(s)
	if !ok || !gjson.Valid(raw) {
		return gjson.Result{}, false
	}
	return gjson.Parse(raw), true
}

// objectPrefix returns the object s starts with, up to its closing brace
// (strings and nesting respected), or false if it does not close.
func objectPrefix(s string) (string, bool) {
	depth, inString := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString && c == '\\':
			i++
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return s[:i+1], true
			}
		}
	}
	return "", false
}

// parseUserJSON reads a user body; false if it is not valid for etcd.
func parseUserJSON(b []byte) (userBody, bool) {
	var u userBody
	v, ok := firstValue(b)
	if !ok {
		return u, false
	}
	if v.Type == gjson.Null {
		return u, true
	}
	if !v.IsObject() {
		return u, false
	}
	ok = true
	v.ForEach(func(k, val gjson.Result) bool {
		switch key := k.String(); {
		case strings.EqualFold(key, "user"):
			ok = jsonStringInto(val, &u.User)
		case strings.EqualFold(key, "password"):
			ok = jsonStringInto(val, &u.Password)
		case strings.EqualFold(key, "roles"):
			ok = jsonStrings(val, &u.Roles)
		case strings.EqualFold(key, "grant"):
			ok = jsonStrings(val, &u.Grant)
		case strings.EqualFold(key, "revoke"):
			ok = jsonStrings(val, &u.Revoke)
		}
		return ok
	})
	return u, ok
}

// parseRoleJSON reads a role body; false if it is not valid for etcd.
func parseRoleJSON(b []byte) (roleBody, bool) {
	var r roleBody
	v, ok := firstValue(b)
	if !ok {
		return r, false
	}
	if v.Type == gjson.Null {
		return r, true
	}
	if !v.IsObject() {
		return r, false
	}
	ok = true
	v.ForEach(func(k, val gjson.Result) bool {
		switch key := k.String(); {
		case strings.EqualFold(key, "role"):
			ok = jsonStringInto(val, &r.Role)
		case strings.EqualFold(key, "permissions"):
			ok = jsonPerms(val, &r.Permissions)
		case strings.EqualFold(key, "grant"):
			ok = jsonPermsPtr(val, &r.Grant)
		case strings.EqualFold(key, "revoke"):
			ok = jsonPermsPtr(val, &r.Revoke)
		}
		return ok
	})
	return r, ok
}

// jsonStringInto sets *dst to a JSON string's value as encoding/json
// would (jsonString); null leaves it. False for any other type.
func jsonStringInto(v gjson.Result, dst *string) bool {
	switch v.Type {
	case gjson.Null:
		return true
	case gjson.String:
		*dst = jsonString(v)
		return true
	}
	return false
}

func jsonStrings(v gjson.Result, dst *[]string) bool {
	if v.Type == gjson.Null {
		*dst = nil
		return true
	}
	if !v.IsArray() {
		return false
	}
	out := []string{}
	ok := true
	v.ForEach(func(_, e gjson.Result) bool {
		var s string
		ok = jsonStringInto(e, &s)
		out = append(out, s)
		return ok
	})
	*dst = out
	return ok
}

// jsonPerms reads {"kv":{"read":[...],"write":[...]}} into p, merging.
func jsonPerms(v gjson.Result, p *permsBody) bool {
	if v.Type == gjson.Null {
		return true
	}
	if !v.IsObject() {
		return false
	}
	ok := true
	v.ForEach(func(k, kv gjson.Result) bool {
		if !strings.EqualFold(k.String(), "kv") || kv.Type == gjson.Null {
			return true
		}
		if !kv.IsObject() {
			ok = false
			return false
		}
		kv.ForEach(func(k, val gjson.Result) bool {
			switch key := k.String(); {
			case strings.EqualFold(key, "read"):
				ok = jsonStrings(val, &p.Read)
			case strings.EqualFold(key, "write"):
				ok = jsonStrings(val, &p.Write)
			}
			return ok
		})
		return ok
	})
	return ok
}

func jsonPermsPtr(v gjson.Result, dst **permsBody) bool {
	if v.Type == gjson.Null {
		*dst = nil
		return true
	}
	if *dst == nil {
		*dst = &permsBody{}
	}
	return jsonPerms(v, *dst)
}

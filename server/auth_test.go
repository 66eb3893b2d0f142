package server

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
)

func wantAuthErr(t *testing.T, what string, err error, kind AuthErrorKind) {
	t.Helper()
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Kind != kind {
		t.Fatalf("%s: want auth error %d, got %v", what, kind, err)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// The registry's rules, through Local (every change goes through the log
// encoding): etcd 3.4's answers for users, roles and enabling, nil and
// empty lists told apart as etcd's JSON does.
func TestAuthApplyRules(t *testing.T) {
	l := NewLocal(store.New(100), 1, nil)
	defer l.Close()
	ctx := context.Background()

	wantAuthErr(t, "enable without root", l.EnableAuth(ctx, GuestFull), AuthNoRootUser)
	wantAuthErr(t, "disable when disabled", l.DisableAuth(ctx), AuthAlreadyDisabled)
	_, _, err := l.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: "u1"})
	wantAuthErr(t, "create without password", err, AuthEmptyPassword)
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserCreate, Name: "u1", Roles: []string{"a"}})
	wantAuthErr(t, "create with roles without password", err, AuthEmptyPassword)

	u, created, err := l.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: "u1", Password: "p"})
	noErr(t, "create u1", err)
	if !created || u.Roles != nil || bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte("p")) != nil {
		t.Fatalf("create u1: %+v created %v", u, created)
	}
	if cost, _ := bcrypt.Cost([]byte(u.Hash)); cost != BcryptCost {
		t.Fatalf("bcrypt cost %d", cost)
	}
	// A first no-op update of a user created without roles turns null
	// into [] (etcd's quirk); the second is refused.
	u, created, err = l.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: "u1"})
	noErr(t, "first no-op update", err)
	if created || u.Roles == nil || len(u.Roles) != 0 {
		t.Fatalf("first no-op update: %+v", u)
	}
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: "u1"})
	wantAuthErr(t, "second no-op update", err, AuthUserNotUpdated)
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserCreate, Name: "u1", Password: "p", Roles: []string{"x"}})
	wantAuthErr(t, "create existing", err, AuthUserExists)

	// Roles given at creation are kept as given; an update sorts them.
	u, created, err = l.PutUser(ctx, UserChange{Mode: UserCreate, Name: "u2", Password: "p", Roles: []string{"b", "a", "a"}})
	noErr(t, "create u2", err)
	if created || !slices.Equal(u.Roles, []string{"b", "a", "a"}) {
		t.Fatalf("create u2: %+v %v", u, created)
	}
	u, _, err = l.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: "u2", Password: "z"})
	noErr(t, "password u2", err)
	if !slices.Equal(u.Roles, []string{"a", "b"}) || bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte("z")) != nil {
		t.Fatalf("password u2: %+v", u)
	}
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserUpdate, Name: "u2", Grant: []string{"a"}})
	wantAuthErr(t, "duplicate grant", err, AuthDuplicateRole)
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserUpdate, Name: "u2", Revoke: []string{"zz"}})
	wantAuthErr(t, "revoke ungranted", err, AuthUngrantedRole)
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserUpdate, Name: "ghost", Grant: []string{"a"}})
	wantAuthErr(t, "update missing", err, AuthUserNotFound)
	u, _, err = l.PutUser(ctx, UserChange{Mode: UserUpdate, Name: "u2", Grant: []string{"c"}, Revoke: []string{"a"}})
	noErr(t, "grant and revoke", err)
	if !slices.Equal(u.Roles, []string{"b", "c"}) {
		t.Fatalf("grant and revoke: %v", u.Roles)
	}
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: "long", Password: string(make([]byte, 73))})
	wantAuthErr(t, "long password", err, AuthPasswordTooLong)

	// Roles: root is built in and immutable.
	wantAuthErr(t, "create root role", l.CreateRole(ctx, AuthRole{Name: RootRoleName}), AuthRootRoleImmutable)
	wantAuthErr(t, "delete root role", l.DeleteRole(ctx, RootRoleName), AuthRootRoleImmutable)
	_, err = l.UpdateRole(ctx, RoleChange{Name: RootRoleName, Grant: &AuthPerms{Read: []string{"/x"}}})
	wantAuthErr(t, "update root role", err, AuthRootRoleImmutable)
	noErr(t, "create r1", l.CreateRole(ctx, AuthRole{Name: "r1"}))
	wantAuthErr(t, "create r1 again", l.CreateRole(ctx, AuthRole{Name: "r1"}), AuthRoleExists)
	r, err := l.UpdateRole(ctx, RoleChange{Name: "r1", Grant: &AuthPerms{Read: []string{"/b", "/a"}}})
	noErr(t, "grant r1", err)
	if !reflect.DeepEqual(r, AuthRole{Name: "r1", Read: []string{"/a", "/b"}, Write: []string{}}) {
		t.Fatalf("grant r1: %#v", r)
	}
	_, err = l.UpdateRole(ctx, RoleChange{Name: "r1", Grant: &AuthPerms{Read: []string{"/a"}}})
	wantAuthErr(t, "duplicate read", err, AuthDuplicateRead)
	_, err = l.UpdateRole(ctx, RoleChange{Name: "r1", Grant: &AuthPerms{Write: []string{"/w", "/w"}}})
	wantAuthErr(t, "duplicate write within one grant", err, AuthDuplicateWrite)
	_, err = l.UpdateRole(ctx, RoleChange{Name: "r1", Revoke: &AuthPerms{Read: []string{"/zz"}}})
	wantAuthErr(t, "revoke absent", err, AuthRoleNotUpdated)
	_, err = l.UpdateRole(ctx, RoleChange{Name: "nothere", Grant: &AuthPerms{Read: []string{"/a"}}})
	wantAuthErr(t, "update missing role", err, AuthRoleNotFound)
	noErr(t, "create r2", l.CreateRole(ctx, AuthRole{Name: "r2", Read: []string{"/b", "/a", "/a"}}))
	if r, _ := l.AuthState().Role("r2"); !reflect.DeepEqual(r, AuthRole{Name: "r2", Read: []string{"/b", "/a", "/a"}}) {
		t.Fatalf("r2 as stored: %#v", r)
	}
	// Revoking what a role created without lists lacks still turns null
	// into [] (a change, as etcd sees it).
	noErr(t, "create r3", l.CreateRole(ctx, AuthRole{Name: "r3"}))
	r, err = l.UpdateRole(ctx, RoleChange{Name: "r3", Revoke: &AuthPerms{Read: []string{"/zz"}}})
	noErr(t, "revoke from r3", err)
	if r.Read == nil || r.Write == nil {
		t.Fatalf("r3: %#v", r)
	}

	// Enabling: root must exist and always has the root role; guest is
	// created unless it exists.
	u, created, err = l.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: RootUserName, Password: "rootpw"})
	noErr(t, "create root", err)
	if !created || !slices.Equal(u.Roles, []string{RootRoleName}) {
		t.Fatalf("root: %+v", u)
	}
	noErr(t, "enable", l.EnableAuth(ctx, GuestFull))
	wantAuthErr(t, "enable again", l.EnableAuth(ctx, GuestFull), AuthAlreadyEnabled)
	st := l.AuthState()
	if g, ok := st.Role(GuestRoleName); !st.Enabled() || !ok || !slices.Equal(g.Read, []string{"/*"}) || !slices.Equal(g.Write, []string{"/*"}) {
		t.Fatalf("guest after enable: %#v %v", g, ok)
	}
	wantAuthErr(t, "delete root while enabled", l.DeleteUser(ctx, RootUserName), AuthRootUserDelete)
	// Revoking root's role is stored, but root still has it.
	_, _, err = l.PutUser(ctx, UserChange{Mode: UserUpdate, Name: RootUserName, Revoke: []string{RootRoleName}})
	noErr(t, "revoke root from root", err)
	if u, _ := l.AuthState().User(RootUserName); !u.HasRole(RootRoleName) {
		t.Fatalf("root lost the root role: %+v", u)
	}
	noErr(t, "disable", l.DisableAuth(ctx))
	noErr(t, "delete guest", l.DeleteRole(ctx, GuestRoleName))
	noErr(t, "enable with no guest access", l.EnableAuth(ctx, GuestNone))
	if g, _ := l.AuthState().Role(GuestRoleName); g.Read == nil || len(g.Read) != 0 || len(g.Write) != 0 {
		t.Fatalf("guest with GuestNone: %#v", g)
	}
	wantAuthErr(t, "delete missing user", l.DeleteUser(ctx, "nobody"), AuthUserNotFound)
	wantAuthErr(t, "delete missing role", l.DeleteRole(ctx, "nope"), AuthRoleNotFound)
	noErr(t, "delete u1", l.DeleteUser(ctx, "u1"))

	var names []string
	for _, r := range l.AuthState().Roles() {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"guest", "r1", "r2", "r3", "root"}) {
		t.Fatalf("roles: %v", names)
	}
	names = nil
	for _, u := range l.AuthState().Users() {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"root", "u2"}) {
		t.Fatalf("users: %v", names)
	}
}

// The matcher: exact keys and "*" prefixes; recursive requests match only
// prefixes; root matches everything; an empty pattern matches nothing.
func TestAuthRoleMatch(t *testing.T) {
	r := AuthRole{Name: "r", Read: []string{"/pub/*", "/exact", ""}, Write: []string{"/pub/w/*", "/x*", "/*x"}}
	for _, c := range []struct {
		key              string
		write, recursive bool
		want             bool
	}{
		{"/pub/a", false, false, true},
		{"/pub/", false, false, true},
		{"/pub", false, false, false},
		{"/pub/a/b", false, true, true},
		{"/pub/", false, true, true},
		{"/pub", false, true, false},
		{"/exact", false, false, true},
		{"/exact", false, true, false},
		{"/exact/", false, false, false},
		{"/exact2", false, false, false},
		{"", false, false, false},
		{"/other", false, false, false},
		{"/pub/a", true, false, false},
		{"/pub/w/x", true, false, true},
		{"/pub/w", true, false, false},
		{"/xy", true, false, true},
		{"/xy", true, true, true},
		{"/y", true, false, false},
	} {
		got := r.HasKeyAccess(c.key, c.write)
		if c.recursive {
			got = r.HasRecursiveAccess(c.key, c.write)
		}
		if got != c.want {
			t.Errorf("key %q write %v recursive %v: got %v", c.key, c.write, c.recursive, got)
		}
	}
	if !rootRole.HasKeyAccess("", true) || !rootRole.HasRecursiveAccess("anything", true) {
		t.Error("root role refused")
	}
}

// Every operation and the registry survive their encodings, nil and empty
// lists told apart; truncations and trailing bytes are refused.
func TestAuthEncodingRoundTrip(t *testing.T) {
	ops := []*authOp{
		{op: authOpEnable, guest: GuestNone},
		{op: authOpDisable},
		{op: authOpPutUser, mode: UserCreate, name: "u", hash: "$2a$10$x", roles: []string{}, grant: []string{"a"}, revoke: []string{"b", "c"}},
		{op: authOpPutUser, mode: UserUpdate, name: "u", grant: []string{}, revoke: []string{}},
		{op: authOpDeleteUser, name: "u"},
		{op: authOpCreateRole, name: "r", read: []string{"/a"}},
		{op: authOpCreateRole, name: "r", write: []string{}},
		{op: authOpUpdateRole, name: "r", grantPerms: &AuthPerms{Read: []string{}}, revokePerms: &AuthPerms{Write: []string{"/w"}}},
		{op: authOpDeleteRole, name: "r"},
	}
	for _, o := range ops {
		b := encodeAuthOp(77, o)
		d := decodeEntry(consensus.Entry{Type: consensus.EntryNormal, Data: b})
		if d.err != nil || d.kind != authEntry || d.id != 77 || !reflect.DeepEqual(d.auth, o) {
			t.Fatalf("op %d: decoded %#v, %v", o.op, d.auth, d.err)
		}
		if err := checkProposal(consensus.Entry{Type: consensus.EntryNormal, Data: b}); err != nil {
			t.Fatalf("op %d refused: %v", o.op, err)
		}
		for i := 9; i < len(b); i++ {
			if _, err := decodeAuthOp(b[9:i]); err == nil && i > 10 {
				t.Fatalf("op %d cut at %d decoded", o.op, i)
			}
		}
		if _, err := decodeAuthOp(append(b[9:len(b):len(b)], 0)); err == nil {
			t.Fatalf("op %d with a trailing byte decoded", o.op)
		}
	}
	s := NewAuthState()
	s.enabled = true
	s.users["root"] = AuthUser{Name: "root", Hash: "h1", Roles: []string{"root"}}
	s.users["u"] = AuthUser{Name: "u", Hash: "h2"}
	s.users["v"] = AuthUser{Name: "v", Hash: "h3", Roles: []string{}}
	s.roles["r"] = AuthRole{Name: "r", Read: []string{"/a", "/b*"}}
	s.roles["e"] = AuthRole{Name: "e", Read: []string{}, Write: []string{}}
	b := s.appendTo(nil)
	got, err := decodeAuthState(b)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("state: %#v, %v", got, err)
	}
	if !slices.Equal(s.appendTo(nil), got.appendTo(nil)) {
		t.Fatal("encoding is not deterministic")
	}
	for i := range len(b) {
		if _, err := decodeAuthState(b[:i]); err == nil {
			t.Fatalf("state cut at %d of %d decoded", i, len(b))
		}
	}
	if _, err := decodeAuthState(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	// An unknown operation is a bad entry, refused alike everywhere.
	bad := encodeAuthOp(5, &authOp{op: 99})
	if d := decodeEntry(consensus.Entry{Type: consensus.EntryNormal, Data: bad}); !errors.Is(d.err, ErrBadEntry) || d.id != 5 {
		t.Fatalf("unknown op: %v", d.err)
	}
}

// Auth state is replicated through Raft: a change made through any
// member is seen by every member, survives a restart of all of them, and
// reaches a member that was down long enough to need a snapshot.
func TestAuthReplicatedRestartAndSnapshot(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) {
		cfg.SnapshotCount, cfg.CatchUpEntries, cfg.FlushEntries = 20, 5, 5
	})
	l := c.leader()
	var lag, other uint64
	for id := range c.members {
		if id != l {
			if lag == 0 {
				lag = id
			} else {
				other = id
			}
		}
	}
	ctx := context.Background()
	auth := func(id uint64, what string, f func(m *Member) error) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := f(c.members[id])
			cancel()
			_ = cctx
			if err == nil {
				return
			}
			var ae *AuthError
			if errors.As(err, &ae) || time.Now().After(deadline) {
				t.Fatalf("%s at %d: %v", what, id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	auth(other, "create root", func(m *Member) error {
		_, _, err := m.PutUser(ctx, UserChange{Mode: UserCreateOrUpdate, Name: "root", Password: "rootpw"})
		return err
	})
	auth(l, "create reader", func(m *Member) error {
		return m.CreateRole(ctx, AuthRole{Name: "reader", Read: []string{"/pub/*"}})
	})
	c.stop(lag)
	for i := range 60 {
		c.set(l, fmt.Sprintf("/k%d", i%10), fmt.Sprint(i))
	}
	auth(other, "create alice", func(m *Member) error {
		_, _, err := m.PutUser(ctx, UserChange{Mode: UserCreate, Name: "alice", Password: "apw", Roles: []string{"reader"}})
		return err
	})
	auth(l, "enable", func(m *Member) error { return m.EnableAuth(ctx, GuestNone) })
	for i := range 60 {
		c.set(l, fmt.Sprintf("/k%d", i%10), fmt.Sprint(i))
	}
	if first, _ := c.members[l].rs.FirstIndex(); first < 30 {
		t.Fatalf("leader did not compact its log (first index %d)", first)
	}
	c.start(lag)
	want := func(id uint64) bool {
		m := c.members[id]
		if m == nil {
			return false
		}
		st := m.AuthState()
		a, ok := st.User("alice")
		g, gok := st.Role(GuestRoleName)
		return st.Enabled() && ok && slices.Equal(a.Roles, []string{"reader"}) &&
			bcrypt.CompareHashAndPassword([]byte(a.Hash), []byte("apw")) == nil && gok && len(g.Read) == 0
	}
	waitFor(t, "the lagging member to have the auth state", func() bool { return want(lag) })
	if first, _ := c.members[lag].rs.FirstIndex(); first < 20 {
		t.Fatalf("caught up without a snapshot (first index %d)", first)
	}
	for id := range c.members {
		if !want(id) {
			t.Fatalf("member %d: %#v", id, c.members[id].AuthState())
		}
	}
	// A restart of every member keeps it.
	for _, id := range []uint64{1, 2, 3} {
		c.stop(id)
	}
	for _, id := range []uint64{1, 2, 3} {
		c.start(id)
	}
	for _, id := range []uint64{1, 2, 3} {
		if !want(id) {
			t.Fatalf("member %d after restart: %#v", id, c.members[id].AuthState())
		}
	}
	// Auth state is invisible to the key space.
	e, err := c.members[1].Get(ctx, "/", true, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range e.Node.Nodes {
		if n.Key != "/" && (len(n.Key) < 2 || n.Key[1] != 'k') {
			t.Fatalf("unexpected key %s in the key space", n.Key)
		}
	}
}

package server

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The v2 auth registry: users (a name, a bcrypt hash of the password and
// role names), roles (read and write path patterns) and whether auth is
// enabled. Like the member registry it is changed only by applying log
// entries (kind authEntry), is kept with the applied state in the Raft
// metadata, and so travels in snapshots. It is not part of the key space:
// /v2/keys never shows it and its changes take no store index.
//
// Passwords never enter the log: the proposing member hashes them with
// bcrypt first, so that apply reads nothing but the entry (bcrypt draws a
// random salt).

// Built-in names.
const (
	// RootRoleName is the built-in role with every permission; it cannot
	// be changed or removed, and the root user always has it.
	RootRoleName = "root"
	// RootUserName must exist before auth is enabled.
	RootUserName = "root"
	// GuestRoleName governs requests that carry no credentials.
	GuestRoleName = "guest"
)

// AuthUser is one user. Hash is a bcrypt hash; the password itself is
// never stored. Roles are kept as given: nil when they were never set
// (etcd shows null), in the order given when the user was created with
// them, sorted and without duplicates after any update.
type AuthUser struct {
	Name  string
	Hash  string
	Roles []string
}

// AuthRole is one role: path patterns it may read and write. A pattern is
// a key ("/a/b") or a prefix ending in "*" ("/a/*"). Nil lists (a role
// created without them) and empty ones are told apart, as etcd does.
type AuthRole struct {
	Name  string
	Read  []string
	Write []string
}

// AuthPerms is a set of patterns to grant or revoke.
type AuthPerms struct {
	Read, Write []string
}

// rootRole is the built-in root role.
var rootRole = AuthRole{Name: RootRoleName, Read: []string{"/*"}, Write: []string{"/*"}}

// HasKeyAccess reports whether the role may read (or write) key: a
// pattern equal to key, or a "*" pattern that is a prefix of it. The root
// role may do anything. An empty pattern matches nothing.
func (r AuthRole) HasKeyAccess(key string, write bool) bool {
	if r.Name == RootRoleName {
		return true
	}
	for _, p := range r.list(write) {
		if n := len(p); n > 0 && (p == key || p[n-1] == '*' && strings.HasPrefix(key, p[:n-1])) {
			return true
		}
	}
	return false
}

// HasRecursiveAccess is HasKeyAccess for a recursive request (a whole
// subtree): only "*" patterns that are a prefix of key match.
func (r AuthRole) HasRecursiveAccess(key string, write bool) bool {
	if r.Name == RootRoleName {
		return true
	}
	for _, p := range r.list(write) {
		if n := len(p); n > 0 && p[n-1] == '*' && strings.HasPrefix(key, p[:n-1]) {
			return true
		}
	}
	return false
}

func (r AuthRole) list(write bool) []string {
	if write {
		return r.Write
	}
	return r.Read
}

// HasRole reports whether the user has role name.
func (u AuthUser) HasRole(name string) bool { return slices.Contains(u.Roles, name) }

// GuestAccess is what the guest role is given when enabling auth creates
// it (it is left alone if it exists).
type GuestAccess byte

const (
	// GuestFull gives guests read and write on every key, as etcd does.
	GuestFull GuestAccess = 0
	// GuestNone creates the guest role with no permissions: requests
	// without credentials are refused.
	GuestNone GuestAccess = 1
)

// UserMode says how PutUser treats an existing user, after etcd's
// PUT /v2/auth/users/NAME.
type UserMode byte

const (
	// UserCreate creates the user with the roles given; an existing user
	// is an error.
	UserCreate UserMode = 1
	// UserCreateOrUpdate creates the user (a password is required) or,
	// if it exists, changes its password.
	UserCreateOrUpdate UserMode = 2
	// UserUpdate grants and revokes roles (and changes the password if
	// one is given) of an existing user.
	UserUpdate UserMode = 3
)

// UserChange is a request to create or change a user.
type UserChange struct {
	Mode UserMode
	Name string
	// Password is hashed by the member before it proposes the change;
	// "" leaves the password as it is (a new user needs one).
	Password      string
	Roles         []string // UserCreate
	Grant, Revoke []string // UserUpdate
}

// RoleChange grants and revokes patterns of an existing role. A nil side
// is left alone; a non-nil one, even empty, rewrites both of the role's
// lists as sorted sets (as etcd does).
type RoleChange struct {
	Name          string
	Grant, Revoke *AuthPerms
}

// AuthErrorKind says why an auth change was refused.
type AuthErrorKind byte

// The reasons an auth change is refused.
const (
	AuthUserExists        AuthErrorKind = iota + 1 // the user exists
	AuthUserNotFound                               // no such user
	AuthRoleExists                                 // the role exists
	AuthRoleNotFound                               // no such role
	AuthRootRoleImmutable                          // the root role cannot be changed or removed
	AuthRootUserDelete                             // root cannot be removed while auth is enabled
	AuthEmptyPassword                              // a new user needs a password
	AuthPasswordTooLong                            // bcrypt takes at most 72 bytes
	AuthNoRootUser                                 // enabling needs the root user
	AuthAlreadyEnabled                             // auth is enabled
	AuthAlreadyDisabled                            // auth is disabled
	AuthDuplicateRole                              // Item: the role the user already has
	AuthUngrantedRole                              // Item: the role the user does not have
	AuthDuplicateRead                              // Item: the read pattern the role already has
	AuthDuplicateWrite                             // Item: the write pattern the role already has
	AuthUserNotUpdated                             // the change would change nothing
	AuthRoleNotUpdated                             // the change would change nothing
)

// AuthError is an auth change refused by apply (or by the proposer, for
// what it can tell alone). Name is the user or role; Item the role or
// pattern the refusal is about. httpapi maps each kind to etcd's answer.
type AuthError struct {
	Kind AuthErrorKind
	Name string
	Item string
}

func (e *AuthError) Error() string {
	switch e.Kind {
	case AuthUserExists:
		return "auth: user " + e.Name + " already exists"
	case AuthUserNotFound:
		return "auth: user " + e.Name + " does not exist"
	case AuthRoleExists:
		return "auth: role " + e.Name + " already exists"
	case AuthRoleNotFound:
		return "auth: role " + e.Name + " does not exist"
	case AuthRootRoleImmutable:
		return "auth: the root role cannot be modified"
	case AuthRootUserDelete:
		return "auth: the root user cannot be deleted while auth is enabled"
	case AuthEmptyPassword:
		return "auth: user " + e.Name + " needs a password"
	case AuthPasswordTooLong:
		return "auth: a password may have at most 72 bytes"
	case AuthNoRootUser:
		return "auth: no root user"
	case AuthAlreadyEnabled:
		return "auth: already enabled"
	case AuthAlreadyDisabled:
		return "auth: already disabled"
	case AuthDuplicateRole:
		return "auth: user " + e.Name + " already has role " + e.Item
	case AuthUngrantedRole:
		return "auth: user " + e.Name + " does not have role " + e.Item
	case AuthDuplicateRead:
		return "auth: role " + e.Name + " already reads " + e.Item
	case AuthDuplicateWrite:
		return "auth: role " + e.Name + " already writes " + e.Item
	case AuthUserNotUpdated:
		return "auth: user " + e.Name + " not updated"
	case AuthRoleNotUpdated:
		return "auth: role " + e.Name + " not updated"
	}
	return fmt.Sprintf("auth: refused (%d)", e.Kind)
}

// AuthState is the auth registry as of an applied index. It is never
// changed once published: apply changes a copy. The slices it hands out
// are shared and must not be modified.
type AuthState struct {
	enabled bool
	users   map[string]AuthUser
	roles   map[string]AuthRole // never the built-in root role
}

// NewAuthState returns an empty registry: auth disabled, no users, no
// roles but the built-in root.
func NewAuthState() *AuthState {
	return &AuthState{users: map[string]AuthUser{}, roles: map[string]AuthRole{}}
}

// Enabled reports whether auth is enabled.
func (s *AuthState) Enabled() bool { return s.enabled }

// User returns user name. The root user always has the root role.
func (s *AuthState) User(name string) (AuthUser, bool) {
	u, ok := s.users[name]
	if ok && name == RootUserName && !u.HasRole(RootRoleName) {
		u.Roles = append(slices.Clip(u.Roles), RootRoleName)
	}
	return u, ok
}

// Role returns role name; root is built in.
func (s *AuthState) Role(name string) (AuthRole, bool) {
	if name == RootRoleName {
		return rootRole, true
	}
	r, ok := s.roles[name]
	return r, ok
}

// Users returns every user, sorted by name.
func (s *AuthState) Users() []AuthUser {
	out := make([]AuthUser, 0, len(s.users))
	for _, n := range slices.Sorted(maps.Keys(s.users)) {
		u, _ := s.User(n)
		out = append(out, u)
	}
	return out
}

// Roles returns every role, the built-in root among them, sorted by name.
func (s *AuthState) Roles() []AuthRole {
	names := slices.Collect(maps.Keys(s.roles))
	names = append(names, RootRoleName)
	slices.Sort(names)
	out := make([]AuthRole, 0, len(names))
	for _, n := range names {
		r, _ := s.Role(n)
		out = append(out, r)
	}
	return out
}

func (s *AuthState) clone() *AuthState {
	return &AuthState{enabled: s.enabled, users: maps.Clone(s.users), roles: maps.Clone(s.roles)}
}

// Auth operations (the data of an authEntry after the request ID).
const (
	authOpEnable     = 1 // guest access byte
	authOpDisable    = 2
	authOpPutUser    = 3 // mode, name, hash, roles (nullable), grant, revoke
	authOpDeleteUser = 4 // name
	authOpCreateRole = 5 // name, read (nullable), write (nullable)
	authOpUpdateRole = 6 // name, grant (nullable perms), revoke (nullable perms)
	authOpDeleteRole = 7 // name
)

// authOp is a decoded auth operation.
type authOp struct {
	op            byte
	guest         GuestAccess
	mode          UserMode
	name, hash    string
	roles         []string // nil vs empty kept
	grant, revoke []string
	read, write   []string // nil vs empty kept
	grantPerms    *AuthPerms
	revokePerms   *AuthPerms
}

// authOutcome is what an applied auth operation answers its waiter.
type authOutcome struct {
	user    AuthUser
	created bool
	role    AuthRole
}

// appendNullable writes a list that may be nil: uvarint count+1, 0 for nil.
func appendNullable(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(ss))+1)
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func (d decoder) nullable() []string {
	n := d.uvarint()
	if d.Err() != nil || n == 0 {
		return nil
	}
	n--
	if n > uint64(d.Len()) {
		d.Fail("truncated")
		return nil
	}
	out := make([]string, 0, n)
	for ; n > 0 && d.Err() == nil; n-- {
		out = append(out, d.string())
	}
	return out
}

func appendPerms(b []byte, p *AuthPerms) []byte {
	if p == nil {
		return append(b, 0)
	}
	return appendNullable(appendNullable(append(b, 1), p.Read), p.Write)
}

func (d decoder) perms() *AuthPerms {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		return &AuthPerms{Read: d.nullable(), Write: d.nullable()}
	}
	if d.Err() == nil {
		d.Fail("bad permissions flag")
	}
	return nil
}

// encodeAuthOp is an auth operation's entry data.
func encodeAuthOp(reqID uint64, o *authOp) []byte {
	b := make([]byte, 9, 64)
	b[0] = authEntry
	binary.BigEndian.PutUint64(b[1:], reqID)
	b = append(b, o.op)
	switch o.op {
	case authOpEnable:
		b = append(b, byte(o.guest))
	case authOpPutUser:
		b = append(b, byte(o.mode))
		b = appendString(b, o.name)
		b = appendString(b, o.hash)
		b = appendNullable(b, o.roles)
		b = appendStrings(b, o.grant)
		b = appendStrings(b, o.revoke)
	case authOpDeleteUser, authOpDeleteRole:
		b = appendString(b, o.name)
	case authOpCreateRole:
		b = appendString(b, o.name)
		b = appendNullable(b, o.read)
		b = appendNullable(b, o.write)
	case authOpUpdateRole:
		b = appendString(b, o.name)
		b = appendPerms(b, o.grantPerms)
		b = appendPerms(b, o.revokePerms)
	}
	return b
}

// decodeAuthOp decodes an auth entry's data after the request ID.
func decodeAuthOp(b []byte) (*authOp, error) {
	d := newDecoder(b)
	o := &authOp{op: d.byte()}
	switch o.op {
	case authOpEnable:
		o.guest = GuestAccess(d.byte())
		if o.guest != GuestFull && o.guest != GuestNone && d.Err() == nil {
			d.Fail("bad guest access %d", o.guest)
		}
	case authOpDisable:
	case authOpPutUser:
		o.mode = UserMode(d.byte())
		o.name, o.hash = d.string(), d.string()
		o.roles = d.nullable()
		o.grant, o.revoke = d.strings(), d.strings()
		if (o.mode < UserCreate || o.mode > UserUpdate) && d.Err() == nil {
			d.Fail("bad user mode %d", o.mode)
		}
	case authOpDeleteUser, authOpDeleteRole:
		o.name = d.string()
	case authOpCreateRole:
		o.name = d.string()
		o.read, o.write = d.nullable(), d.nullable()
	case authOpUpdateRole:
		o.name = d.string()
		o.grantPerms, o.revokePerms = d.perms(), d.perms()
	default:
		if d.Err() == nil {
			d.Fail("unknown operation %d", o.op)
		}
	}
	if d.Err() == nil && d.Len() != 0 {
		d.Fail("trailing bytes")
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("server: bad auth entry: %w", d.Err())
	}
	return o, nil
}

// apply carries out o on s, which must be a private copy. It reads
// nothing but s and o, so every member applies an entry alike; a refusal
// (an *AuthError) leaves s as it was in every way that matters, since the
// caller then drops the copy.
func (s *AuthState) apply(o *authOp) (authOutcome, error) {
	switch o.op {
	case authOpEnable:
		if s.enabled {
			return authOutcome{}, &AuthError{Kind: AuthAlreadyEnabled}
		}
		if _, ok := s.users[RootUserName]; !ok {
			return authOutcome{}, &AuthError{Kind: AuthNoRootUser}
		}
		if _, ok := s.roles[GuestRoleName]; !ok {
			g := AuthRole{Name: GuestRoleName, Read: []string{"/*"}, Write: []string{"/*"}}
			if o.guest == GuestNone {
				g.Read, g.Write = []string{}, []string{}
			}
			s.roles[GuestRoleName] = g
		}
		s.enabled = true
	case authOpDisable:
		if !s.enabled {
			return authOutcome{}, &AuthError{Kind: AuthAlreadyDisabled}
		}
		s.enabled = false
	case authOpPutUser:
		return s.putUser(o)
	case authOpDeleteUser:
		if s.enabled && o.name == RootUserName {
			return authOutcome{}, &AuthError{Kind: AuthRootUserDelete, Name: o.name}
		}
		if _, ok := s.users[o.name]; !ok {
			return authOutcome{}, &AuthError{Kind: AuthUserNotFound, Name: o.name}
		}
		delete(s.users, o.name)
	case authOpCreateRole:
		if o.name == RootRoleName {
			return authOutcome{}, &AuthError{Kind: AuthRootRoleImmutable, Name: o.name}
		}
		if _, ok := s.roles[o.name]; ok {
			return authOutcome{}, &AuthError{Kind: AuthRoleExists, Name: o.name}
		}
		r := AuthRole{Name: o.name, Read: o.read, Write: o.write}
		s.roles[o.name] = r
		return authOutcome{role: r, created: true}, nil
	case authOpUpdateRole:
		return s.updateRole(o)
	case authOpDeleteRole:
		if o.name == RootRoleName {
			return authOutcome{}, &AuthError{Kind: AuthRootRoleImmutable, Name: o.name}
		}
		if _, ok := s.roles[o.name]; !ok {
			return authOutcome{}, &AuthError{Kind: AuthRoleNotFound, Name: o.name}
		}
		delete(s.roles, o.name)
	}
	return authOutcome{}, nil
}

func (s *AuthState) putUser(o *authOp) (authOutcome, error) {
	old, exists := s.User(o.name)
	create := o.mode == UserCreate || (o.mode == UserCreateOrUpdate && !exists)
	if create {
		if o.hash == "" {
			return authOutcome{}, &AuthError{Kind: AuthEmptyPassword, Name: o.name}
		}
		if exists {
			return authOutcome{}, &AuthError{Kind: AuthUserExists, Name: o.name}
		}
		u := AuthUser{Name: o.name, Hash: o.hash, Roles: o.roles}
		if o.name == RootUserName && !u.HasRole(RootRoleName) {
			u.Roles = append(slices.Clip(u.Roles), RootRoleName)
		}
		s.users[o.name] = u
		return authOutcome{user: u, created: o.mode == UserCreateOrUpdate}, nil
	}
	if !exists {
		return authOutcome{}, &AuthError{Kind: AuthUserNotFound, Name: o.name}
	}
	nu := AuthUser{Name: o.name, Hash: old.Hash}
	if o.hash != "" {
		nu.Hash = o.hash
	}
	set := map[string]bool{}
	for _, r := range old.Roles {
		set[r] = true
	}
	for _, r := range o.grant {
		if set[r] {
			return authOutcome{}, &AuthError{Kind: AuthDuplicateRole, Name: o.name, Item: r}
		}
		set[r] = true
	}
	for _, r := range o.revoke {
		if !set[r] {
			return authOutcome{}, &AuthError{Kind: AuthUngrantedRole, Name: o.name, Item: r}
		}
		delete(set, r)
	}
	nu.Roles = sortedSet(set)
	if nu.Hash == old.Hash && sameList(nu.Roles, old.Roles) {
		return authOutcome{}, &AuthError{Kind: AuthUserNotUpdated, Name: o.name}
	}
	s.users[o.name] = nu
	return authOutcome{user: nu}, nil
}

func (s *AuthState) updateRole(o *authOp) (authOutcome, error) {
	if o.name == RootRoleName {
		return authOutcome{}, &AuthError{Kind: AuthRootRoleImmutable, Name: o.name}
	}
	old, ok := s.roles[o.name]
	if !ok {
		return authOutcome{}, &AuthError{Kind: AuthRoleNotFound, Name: o.name}
	}
	nr := old
	if g := o.grantPerms; g != nil {
		read, write := setOf(nr.Read), setOf(nr.Write)
		for _, p := range g.Read {
			if read[p] {
				return authOutcome{}, &AuthError{Kind: AuthDuplicateRead, Name: o.name, Item: p}
			}
			read[p] = true
		}
		for _, p := range g.Write {
			if write[p] {
				return authOutcome{}, &AuthError{Kind: AuthDuplicateWrite, Name: o.name, Item: p}
			}
			write[p] = true
		}
		nr.Read, nr.Write = sortedSet(read), sortedSet(write)
	}
	if r := o.revokePerms; r != nil {
		read, write := setOf(nr.Read), setOf(nr.Write)
		for _, p := range r.Read {
			delete(read, p) // revoking what the role lacks is ignored
		}
		for _, p := range r.Write {
			delete(write, p)
		}
		nr.Read, nr.Write = sortedSet(read), sortedSet(write)
	}
	if sameList(nr.Read, old.Read) && sameList(nr.Write, old.Write) {
		return authOutcome{}, &AuthError{Kind: AuthRoleNotUpdated, Name: o.name}
	}
	s.roles[o.name] = nr
	return authOutcome{role: nr}, nil
}

func setOf(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// sortedSet returns the set's members sorted; never nil.
func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// sameList reports whether a and b are equal, nil and empty told apart
// (etcd compares with reflect.DeepEqual).
func sameList(a, b []string) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}

// Encoding with the applied state: version 1; a flags byte (1: enabled);
// uvarint user count and per user (by name) name, hash, roles
// (nullable); uvarint role count and per role (by name) name, read and
// write (nullable).
const authStateV1 = 1

func (s *AuthState) appendTo(b []byte) []byte {
	b = append(b, authStateV1)
	var flags byte
	if s.enabled {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(s.users)))
	for _, n := range slices.Sorted(maps.Keys(s.users)) {
		u := s.users[n]
		b = appendString(b, u.Name)
		b = appendString(b, u.Hash)
		b = appendNullable(b, u.Roles)
	}
	b = binary.AppendUvarint(b, uint64(len(s.roles)))
	for _, n := range slices.Sorted(maps.Keys(s.roles)) {
		r := s.roles[n]
		b = appendString(b, r.Name)
		b = appendNullable(b, r.Read)
		b = appendNullable(b, r.Write)
	}
	return b
}

func decodeAuthState(b []byte) (*AuthState, error) {
	d := newDecoder(b)
	if v := d.byte(); v != authStateV1 {
		return nil, fmt.Errorf("server: bad auth state version %d", v)
	}
	s := NewAuthState()
	flags := d.byte()
	s.enabled = flags&1 != 0
	for n := d.uvarint(); n > 0 && d.Err() == nil; n-- {
		u := AuthUser{Name: d.string(), Hash: d.string(), Roles: d.nullable()}
		s.users[u.Name] = u
	}
	for n := d.uvarint(); n > 0 && d.Err() == nil; n-- {
		r := AuthRole{Name: d.string(), Read: d.nullable(), Write: d.nullable()}
		s.roles[r.Name] = r
	}
	if d.Err() == nil && (flags&^1 != 0 || d.Len() != 0) {
		d.Fail("trailing bytes or unknown flags")
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("server: bad auth state: %w", d.Err())
	}
	return s, nil
}

// describe names an operation for the log: never a hash or a password.
func (o *authOp) describe() string {
	switch o.op {
	case authOpEnable:
		return "enable"
	case authOpDisable:
		return "disable"
	case authOpPutUser:
		return "user " + o.name
	case authOpDeleteUser:
		return "delete user " + o.name
	case authOpCreateRole:
		return "create role " + o.name
	case authOpUpdateRole:
		return "update role " + o.name
	case authOpDeleteRole:
		return "delete role " + o.name
	}
	return "unknown"
}

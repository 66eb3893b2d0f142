package doctest

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Words splits a command line as sh does for the forms documented examples
// use: 'single' and "double" quotes, backslash escapes outside quotes,
// $NAME and ${NAME} outside single quotes (replaced by vars[NAME]), and a
// comment from a word starting with #. A variable not in vars, shell
// syntax such as pipes, redirections and globs, and an unterminated quote
// are errors.
func Words(line string, vars map[string]string) ([]string, error) {
	var (
		words []string
		w     strings.Builder
		inW   bool
	)
	// expand replaces the variable at line[i] ('$') and returns the index
	// after it.
	expand := func(i int) (int, error) {
		j, name := i+1, ""
		if strings.HasPrefix(line[j:], "{") {
			k := strings.IndexByte(line[j:], '}')
			if k < 0 {
				return 0, fmt.Errorf("unterminated ${: %q", line[i:])
			}
			name, j = line[j+1:j+k], j+k+1
		} else {
			for j < len(line) && (line[j] == '_' || 'a' <= line[j] && line[j] <= 'z' || 'A' <= line[j] && line[j] <= 'Z' || '0' <= line[j] && line[j] <= '9') {
				j++
			}
			name = line[i+1 : j]
		}
		v, ok := vars[name]
		if !ok {
			var names []string
			for n := range vars {
				names = append(names, "$"+n)
			}
			slices.Sort(names)
			return 0, fmt.Errorf("only %s may be used: %q", strings.Join(names, ", "), line[i:])
		}
		w.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inW {
				words = append(words, w.String())
				w.Reset()
				inW = false
			}
			i++
		case c == '#' && !inW:
			i = len(line)
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 2
			inW = true
		case c == '"':
			i++
			for {
				if i >= len(line) {
					return nil, errors.New(`unterminated "`)
				}
				if line[i] == '"' {
					i++
					break
				}
				if line[i] == '$' {
					var err error
					if i, err = expand(i); err != nil {
						return nil, err
					}
					continue
				}
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("$`\"\\", line[i+1]) >= 0 {
					i++
				}
				w.WriteByte(line[i])
				i++
			}
			inW = true
		case c == '$':
			var err error
			if i, err = expand(i); err != nil {
				return nil, err
			}
			inW = true
		case c == '\\' && i+1 < len(line):
			w.WriteByte(line[i+1])
			i += 2
			inW = true
		case strings.IndexByte("|&;<>()`*?[]{}~", c) >= 0:
			return nil, fmt.Errorf("shell syntax %q is not understood by this test", c)
		default:
			w.WriteByte(c)
			i++
			inW = true
		}
	}
	if inW {
		words = append(words, w.String())
	}
	return words, nil
}

// Curl is the request a documented curl command makes.
type Curl struct {
	Method string   // -X, else GET, or POST with -d (as curl does)
	Target string   // path and query after $VAR, as written
	Data   []string // the -d arguments, as written
}

// ParseCurl reads a curl command line (split by Words) that may use -s,
// -X METHOD (or -XMETHOD), -d DATA (repeatable) and one URL starting with
// $urlVar/ (or ${urlVar}/). Any other argument is offered to option, if
// not nil, with next to take the argument's own argument; option says
// whether it understood it. What option does not understand is an error.
func ParseCurl(line, urlVar string, option func(arg string, next func() (string, error)) (bool, error)) (Curl, error) {
	var c Curl
	base := "\x00" + urlVar
	words, err := Words(line, map[string]string{urlVar: base})
	if err != nil {
		return c, err
	}
	if len(words) == 0 || words[0] != "curl" {
		return c, fmt.Errorf("not a curl command: %q", line)
	}
	hasURL := false
	for i := 1; i < len(words); i++ {
		a := words[i]
		next := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%s needs an argument", a)
			}
			i++
			return words[i], nil
		}
		switch {
		case a == "-s":
		case a == "-X":
			if c.Method, err = next(); err != nil {
				return c, err
			}
		case strings.HasPrefix(a, "-X"):
			c.Method = a[2:]
		case a == "-d":
			d, err := next()
			if err != nil {
				return c, err
			}
			c.Data = append(c.Data, d)
		case strings.HasPrefix(a, base+"/"):
			if hasURL {
				return c, fmt.Errorf("two URLs in %q", line)
			}
			c.Target, hasURL = strings.TrimPrefix(a, base), true
		default:
			ok := false
			if option != nil {
				if ok, err = option(a, next); err != nil {
					return c, err
				}
			}
			if !ok {
				return c, fmt.Errorf("curl argument %q is not understood by this test (URLs must start with $%s/)", a, urlVar)
			}
		}
	}
	if !hasURL {
		return c, fmt.Errorf("no $%s URL in %q", urlVar, line)
	}
	if c.Method == "" {
		c.Method = http.MethodGet
		if c.Data != nil {
			c.Method = http.MethodPost // as curl does for -d
		}
	}
	return c, nil
}

package policy

import "sync"

// Memo keeps compiled policies across Load calls in one long-lived process
// (secrun-runc's resident admission server), keyed by the policy's name and
// Hash. Load still reads and hashes the policy's files every time, so an
// edited policy or data file is compiled afresh and the old entry ages out;
// only the compilation is skipped. A Memo holds at most a few policies.
type Memo struct {
	mu      sync.Mutex
	engines map[string]*Engine
	order   []string // oldest first
}

// memoSize bounds a Memo: a host runs one or two policies at a time, and a
// policy being edited should not pin every past version in memory.
const memoSize = 8

// WithMemo has Load return the Engine m already holds for the same policy
// and hash, and remember the one it compiles. Engines in a Memo evaluate
// with the real clock: do not combine it with WithEvalTime.
func WithMemo(m *Memo) Option {
	return func(o *options) { o.memo = m }
}

func (m *Memo) get(key string) *Engine {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.engines[key]
}

func (m *Memo) put(key string, e *Engine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engines == nil {
		m.engines = map[string]*Engine{}
	}
	if _, ok := m.engines[key]; ok {
		return
	}
	if len(m.order) == memoSize {
		delete(m.engines, m.order[0])
		m.order = m.order[1:]
	}
	m.engines[key] = e
	m.order = append(m.order, key)
}

// Len is how many compiled policies m holds.
func (m *Memo) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.engines)
}

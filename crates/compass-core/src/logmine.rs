//! A Drain-like online log template miner.
//!
//! Each message is split on whitespace; obvious variables (numbers, hex ids, UUIDs,
//! IPs and ports, durations and sizes, paths, month and weekday names, `key=value`
//! values) are masked segment by segment by hand-written byte checks (see [`mask`]),
//! keeping the delimiters (`rhost=<*>`, `<*>:<*>`, `(uid=<*>)`); the masked tokens are
//! interned, then a fixed-depth prefix tree keyed by token count and the leading tokens
//! picks a short list of candidate templates. The most similar candidate at or above
//! the threshold absorbs the message; otherwise a new template starts. A position that
//! differs becomes a pattern with the shared structure when both tokens have the same
//! delimiters or the same `key=` (`user=ann`, `user=bob` → `user=<*>`), else `<*>`; a
//! message token that fits a template's pattern counts as matching it.
//! The miner keeps its buffers between calls, so mining allocates only for new tokens,
//! new tree nodes and new or changed templates.

mod mask;

pub use mask::{is_variable, mask_token};

use rustc_hash::FxHashMap;

/// Index of a template in its miner (stable for the miner's lifetime).
pub type TemplateId = u32;

/// The placeholder for a variable token in template text.
pub const WILDCARD: &str = "<*>";
/// Token id of [`WILDCARD`].
const WILD: u32 = 0;

/// Entries kept in the token-compatibility cache before it is cleared (bounds memory
/// on streams with many distinct values).
const FITS_CACHE_MAX: usize = 1 << 16;

/// Tuning of the miner (Drain's parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinerConfig {
    /// Leading tokens used as tree levels below the token-count level.
    pub depth: usize,
    /// Fraction of matching constant tokens needed to join a template.
    pub similarity: f64,
    /// Children per tree node before new tokens share the wildcard child.
    pub max_children: usize,
    /// Messages longer than this many tokens are truncated (the rest is ignored).
    pub max_tokens: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        Self {
            depth: 1,
            similarity: 0.8,
            max_children: 100,
            max_tokens: 128,
        }
    }
}

#[derive(Debug, Clone)]
struct Template {
    tokens: Vec<u32>,
    text: String,
    count: u64,
}

#[derive(Debug, Default)]
struct Node {
    children: FxHashMap<u32, u32>,
    templates: Vec<TemplateId>,
}

/// An online template miner. See the module documentation.
#[derive(Debug)]
pub struct TemplateMiner {
    config: MinerConfig,
    /// Interned token text → id; `ids[id]` is the text.
    interned: FxHashMap<Box<str>, u32>,
    texts: Vec<Box<str>>,
    /// Whether the token contains a digit (such tokens route to the wildcard child).
    has_digit: Vec<bool>,
    nodes: Vec<Node>,
    /// Token count → node index of the length level.
    by_length: FxHashMap<usize, u32>,
    templates: Vec<Template>,
    lines: u64,
    /// Whether the token is a partly masked pattern such as `user=<*>`.
    is_pattern: Vec<bool>,
    /// (pattern token, message token) → whether the message token fits the pattern.
    fits_cache: FxHashMap<(u32, u32), bool>,
    /// Cache of [`Self::generalise`]: (template token, message token) → merged token.
    general_cache: FxHashMap<(u32, u32), u32>,
    tokens_buf: Vec<u32>,
    mask_buf: String,
}

impl Default for TemplateMiner {
    fn default() -> Self {
        Self::new(MinerConfig::default())
    }
}

impl TemplateMiner {
    pub fn new(config: MinerConfig) -> Self {
        let mut miner = TemplateMiner {
            config,
            interned: FxHashMap::default(),
            texts: Vec::new(),
            has_digit: Vec::new(),
            nodes: Vec::new(),
            by_length: FxHashMap::default(),
            templates: Vec::new(),
            lines: 0,
            is_pattern: Vec::new(),
            fits_cache: FxHashMap::default(),
            general_cache: FxHashMap::default(),
            tokens_buf: Vec::with_capacity(64),
            mask_buf: String::with_capacity(64),
        };
        let wild = miner.intern(WILDCARD);
        debug_assert_eq!(wild, WILD);
        miner
    }

    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.interned.get(token) {
            return id;
        }
        let id = self.texts.len() as u32;
        self.texts.push(token.into());
        // Tokens with a digit or a masked part are likely variables: they route to the
        // wildcard child of the tree.
        let variable = token.bytes().any(|b| b.is_ascii_digit()) || token.contains(WILDCARD);
        self.has_digit.push(variable);
        self.is_pattern
            .push(token != WILDCARD && token.contains(WILDCARD));
        self.interned.insert(token.into(), id);
        id
    }

    /// Tokenise and mask `message` into `self.tokens_buf`.
    fn tokenise(&mut self, message: &str) {
        let mut tokens = std::mem::take(&mut self.tokens_buf);
        let mut buf = std::mem::take(&mut self.mask_buf);
        tokens.clear();
        for raw in message.split_ascii_whitespace() {
            if tokens.len() == self.config.max_tokens {
                break;
            }
            let id = match mask_token(raw, &mut buf) {
                None => self.intern(raw),
                Some(true) => WILD,
                Some(false) => self.intern(&buf),
            };
            tokens.push(id);
        }
        self.tokens_buf = tokens;
        self.mask_buf = buf;
    }

    /// Mine one message; returns the template it now belongs to.
    pub fn add(&mut self, message: &str) -> TemplateId {
        self.lines += 1;
        self.tokenise(message);
        let leaf = self.leaf_for_insert();
        let tokens = std::mem::take(&mut self.tokens_buf);
        let id = match self.best_match(leaf, &tokens) {
            Some(id) => {
                self.merge(id, &tokens);
                id
            }
            None => {
                let id = self.templates.len() as TemplateId;
                let text = self.render(&tokens);
                self.templates.push(Template {
                    tokens: tokens.clone(),
                    text,
                    count: 1,
                });
                self.nodes[leaf as usize].templates.push(id);
                id
            }
        };
        self.tokens_buf = tokens;
        id
    }

    /// The template `message` would join, without changing the miner.
    pub fn match_message(&mut self, message: &str) -> Option<TemplateId> {
        self.tokenise(message);
        let leaf = self.find_leaf(&self.tokens_buf)?;
        let tokens = std::mem::take(&mut self.tokens_buf);
        let found = self.best_match(leaf, &tokens);
        let covered = found.is_some_and(|id| {
            self.templates[id as usize]
                .tokens
                .iter()
                .zip(&tokens)
                .all(|(&a, &b)| {
                    a == WILD
                        || a == b
                        || (self.is_pattern[a as usize]
                            && mask::fits(&self.texts[a as usize], &self.texts[b as usize]))
                })
        });
        self.tokens_buf = tokens;
        found.filter(|_| covered)
    }

    fn child_key(&self, token: u32) -> u32 {
        if self.has_digit[token as usize] {
            WILD
        } else {
            token
        }
    }

    fn new_node(&mut self) -> u32 {
        self.nodes.push(Node::default());
        (self.nodes.len() - 1) as u32
    }

    fn leaf_for_insert(&mut self) -> u32 {
        let len = self.tokens_buf.len();
        let mut node = match self.by_length.get(&len) {
            Some(&n) => n,
            None => {
                let n = self.new_node();
                self.by_length.insert(len, n);
                n
            }
        };
        for i in 0..self.config.depth.min(len) {
            let key = self.child_key(self.tokens_buf[i]);
            let children = &self.nodes[node as usize].children;
            if let Some(&next) = children.get(&key) {
                node = next;
                continue;
            }
            // Keep one slot for the wildcard child, which takes the overflow.
            let key = if children.len() + 1 >= self.config.max_children {
                WILD
            } else {
                key
            };
            node = match children.get(&key) {
                Some(&next) => next,
                None => {
                    let next = self.new_node();
                    self.nodes[node as usize].children.insert(key, next);
                    next
                }
            };
        }
        node
    }

    fn find_leaf(&self, tokens: &[u32]) -> Option<u32> {
        let mut node = *self.by_length.get(&tokens.len())?;
        for &t in tokens.iter().take(self.config.depth) {
            let children = &self.nodes[node as usize].children;
            node = *children
                .get(&self.child_key(t))
                .or_else(|| children.get(&WILD))?;
        }
        Some(node)
    }

    /// The most similar template in `leaf` at or above the threshold (ties: more
    /// wildcards, then the older template). Similarity is the share of the
    /// message's positions that match: equal tokens, a pattern such as `user=<*>`
    /// covering `user=bob`, or a wildcard facing a masked variable.
    fn best_match(&mut self, leaf: u32, tokens: &[u32]) -> Option<TemplateId> {
        let Self {
            nodes,
            templates,
            texts,
            is_pattern,
            fits_cache,
            config,
            ..
        } = self;
        if fits_cache.len() > FITS_CACHE_MAX {
            fits_cache.clear();
        }
        let mut best: Option<(TemplateId, f64, usize)> = None;
        for &id in &nodes[leaf as usize].templates {
            let t = &templates[id as usize].tokens;
            let mut same = 0usize;
            let mut wild = 0usize;
            let mut both_wild = 0usize;
            for (&a, &b) in t.iter().zip(tokens) {
                if a == WILD {
                    wild += 1;
                    both_wild += usize::from(b == WILD);
                } else if a == b
                    || (is_pattern[a as usize]
                        && *fits_cache
                            .entry((a, b))
                            .or_insert_with(|| mask::fits(&texts[a as usize], &texts[b as usize])))
                {
                    same += 1;
                }
            }
            // Positions masked as variables on both sides count as matching.
            let sim = (same + both_wild) as f64 / tokens.len().max(1) as f64;
            if best.is_none_or(|(_, s, w)| sim > s || (sim == s && wild > w)) {
                best = Some((id, sim, wild));
            }
        }
        let (id, sim, _) = best?;
        (tokens.is_empty() || sim >= config.similarity).then_some(id)
    }

    /// The token that covers both `a` (in a template) and `b` (in a message): `a`
    /// itself when equal or when `b` fits the pattern `a`, the segment-wise pattern
    /// when both have the same delimiters (`user=ann`, `user=bob` → `user=<*>`), else
    /// the wildcard.
    fn generalise(&mut self, a: u32, b: u32) -> u32 {
        if a == b || a == WILD {
            return a;
        }
        if let Some(&g) = self.general_cache.get(&(a, b)) {
            return g;
        }
        let mut out = String::new();
        let g = if mask::generalise(&self.texts[a as usize], &self.texts[b as usize], &mut out) {
            self.intern(&out)
        } else {
            WILD
        };
        self.general_cache.insert((a, b), g);
        g
    }

    fn merge(&mut self, id: TemplateId, tokens: &[u32]) {
        let mut t = std::mem::take(&mut self.templates[id as usize].tokens);
        let mut changed = false;
        for (a, &b) in t.iter_mut().zip(tokens) {
            let g = self.generalise(*a, b);
            if g != *a {
                *a = g;
                changed = true;
            }
        }
        let text = changed.then(|| self.render(&t));
        let template = &mut self.templates[id as usize];
        template.tokens = t;
        template.count += 1;
        if let Some(text) = text {
            template.text = text;
        }
    }

    fn render(&self, tokens: &[u32]) -> String {
        let mut s = String::new();
        for (i, t) in tokens.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&self.texts[*t as usize]);
        }
        s
    }

    /// Template text (variables as `<*>`). Panics on an id from another miner.
    pub fn template(&self, id: TemplateId) -> &str {
        &self.templates[id as usize].text
    }

    /// How many messages joined template `id`.
    pub fn count(&self, id: TemplateId) -> u64 {
        self.templates.get(id as usize).map_or(0, |t| t.count)
    }

    /// Every template with its count, in creation order.
    pub fn templates(&self) -> impl Iterator<Item = (TemplateId, &str, u64)> + '_ {
        self.templates
            .iter()
            .enumerate()
            .map(|(i, t)| (i as TemplateId, t.text.as_str(), t.count))
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Number of messages mined.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

#[cfg(test)]
#[path = "logmine_tests.rs"]
mod tests;

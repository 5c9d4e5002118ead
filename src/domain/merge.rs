//! The three-way merge behind a save conflict: the version the form opened
//! (`base`), the form (`ours`) and what is stored now (`theirs`). A field
//! only one side changed takes that side's value; a field both changed to
//! different values is a `Clash` the operator settles field by field.
//! Values are compared, never shown: a secret is merged by "changed or not".

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::secret::{is_secret_field, mask_config, mask_within};

/// A field both sides changed, to different values (`None`: removed).
/// Its `Debug` masks secrets (a key typed into the form is one).
#[derive(Clone, PartialEq)]
pub struct Clash {
    pub field: String,
    pub theirs: Option<Value>,
    pub yours: Option<Value>,
}

/// `value` under `field`, masked as a config's field is.
fn masked(field: &str, value: &Option<Value>) -> Option<Value> {
    let v = value.as_ref()?;
    let mut one = Map::new();
    one.insert(field.to_string(), v.clone());
    mask_within(&mask_config(&Value::Object(one))[field], is_secret_field(field)).into()
}

impl fmt::Debug for Clash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clash")
            .field("field", &self.field)
            .field("theirs", &masked(&self.field, &self.theirs))
            .field("yours", &masked(&self.field, &self.yours))
            .finish()
    }
}

/// Which side a clash keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Theirs,
    Yours,
}

/// Their row with your changed fields applied, and the fields both changed
/// (holding their value in `merged` until chosen).
#[derive(Clone, PartialEq)]
pub struct Merge {
    pub merged: Map<String, Value>,
    pub clashes: Vec<Clash>,
}

impl fmt::Debug for Merge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Merge")
            .field("merged", &mask_config(&Value::Object(self.merged.clone())))
            .field("clashes", &self.clashes)
            .finish()
    }
}

impl Merge {
    /// The merged config with each clash settled by `choose` (given the
    /// clash's field).
    pub fn settle(&self, choose: impl Fn(&str) -> Side) -> Map<String, Value> {
        let mut out = self.merged.clone();
        for c in &self.clashes {
            let value = match choose(&c.field) {
                Side::Theirs => &c.theirs,
                Side::Yours => &c.yours,
            };
            match value {
                Some(v) => out.insert(c.field.clone(), v.clone()),
                None => out.remove(&c.field),
            };
        }
        out
    }
}

/// One value three ways: the merged value, or None for a clash.
pub fn pick<'a, T: PartialEq>(base: &'a T, ours: &'a T, theirs: &'a T) -> Option<&'a T> {
    if ours == base || ours == theirs {
        Some(theirs)
    } else if theirs == base {
        Some(ours)
    } else {
        None
    }
}

/// Merge `ours` and `theirs`, both descended from `base`, field by field
/// (top-level fields: a nested object is one value).
pub fn three_way(base: &Map<String, Value>, ours: &Map<String, Value>, theirs: &Map<String, Value>) -> Merge {
    let mut merged = theirs.clone();
    let mut clashes = Vec::new();
    let fields: BTreeSet<&String> = base.keys().chain(ours.keys()).chain(theirs.keys()).collect();
    for field in fields {
        let (b, o, t) = (base.get(field), ours.get(field), theirs.get(field));
        match pick(&b, &o, &t) {
            Some(Some(v)) => {
                merged.insert(field.clone(), (*v).clone());
            }
            Some(None) => {
                merged.remove(field);
            }
            None => clashes.push(Clash { field: field.clone(), theirs: t.cloned(), yours: o.cloned() }),
        }
    }
    Merge { merged, clashes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn your_fields_land_on_theirs() {
        let base = map(json!({"apiKey": "sk-a", "model": "gpt-4.1"}));
        let ours = map(json!({"apiKey": "sk-a", "model": "gpt-4o"}));
        let theirs = map(json!({"apiKey": "sk-a", "model": "gpt-4.1", "max_tokens": 999}));
        let m = three_way(&base, &ours, &theirs);
        assert!(m.clashes.is_empty());
        assert_eq!(Value::Object(m.merged), json!({"apiKey": "sk-a", "model": "gpt-4o", "max_tokens": 999}));
    }

    #[test]
    fn a_key_they_rotated_stays_unless_you_typed_one() {
        let base = map(json!({"apiKey": "sk-old"}));
        let theirs = map(json!({"apiKey": "sk-theirs"}));
        let kept = three_way(&base, &base, &theirs);
        assert_eq!(kept.merged["apiKey"], "sk-theirs");
        let both = three_way(&base, &map(json!({"apiKey": "sk-mine"})), &theirs);
        assert_eq!(both.clashes.len(), 1);
        assert_eq!(both.settle(|_| Side::Yours)["apiKey"], "sk-mine");
        assert_eq!(both.settle(|_| Side::Theirs)["apiKey"], "sk-theirs");
    }

    #[test]
    fn debug_never_shows_a_key() {
        let base = map(json!({"apiKey": "sk-old-0000000000000000"}));
        let ours = map(json!({"apiKey": "sk-mine-1111111111111111"}));
        let theirs = map(json!({"apiKey": "sk-theirs-2222222222222222"}));
        let shown = format!("{:?}", three_way(&base, &ours, &theirs));
        assert!(shown.contains("apiKey") && !shown.contains("sk-"), "{shown}");
    }

    #[test]
    fn removals_merge_like_values() {
        let base = map(json!({"model": "a", "style": "x"}));
        let ours = map(json!({"model": "a"}));
        let theirs = map(json!({"model": "b", "style": "x"}));
        let m = three_way(&base, &ours, &theirs);
        assert_eq!(Value::Object(m.merged), json!({"model": "b"}));
        let clash = three_way(&base, &ours, &map(json!({"model": "a", "style": "y"})));
        assert_eq!(clash.clashes, vec![Clash { field: "style".into(), theirs: Some(json!("y")), yours: None }]);
        assert!(!clash.settle(|_| Side::Yours).contains_key("style"));
    }

    fn small_map() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c", "d"]), 0..3i64, 0..4)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
    }

    proptest! {
        #[test]
        fn the_merge_keeps_each_sides_changes(base in small_map(), ours in small_map(), theirs in small_map()) {
            let m = three_way(&base, &ours, &theirs);
            let yours = m.settle(|_| Side::Yours);
            let kept = m.settle(|_| Side::Theirs);
            let keys: BTreeSet<&String> = base.keys().chain(ours.keys()).chain(theirs.keys()).collect();
            for k in keys {
                let (b, o, t) = (base.get(k), ours.get(k), theirs.get(k));
                let clash = m.clashes.iter().any(|c| &c.field == k);
                prop_assert_eq!(clash, o != b && t != b && o != t);
                if o == b {
                    prop_assert_eq!(yours.get(k), t, "a field you left is theirs");
                }
                if t == b {
                    prop_assert_eq!(kept.get(k), o, "a field they left is yours");
                }
                if clash {
                    prop_assert_eq!(yours.get(k), o);
                    prop_assert_eq!(kept.get(k), t);
                }
            }
            // Merging with no change of yours is theirs; with none of theirs, yours.
            prop_assert_eq!(three_way(&base, &base, &theirs).merged, theirs.clone());
            prop_assert_eq!(three_way(&base, &ours, &base).merged, ours.clone());
        }
    }
}

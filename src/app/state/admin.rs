//! The chain and policy screen's state (`admin` has its keys and view).

use crate::domain::Policy;
use crate::domain::change::ImpactRow;
use crate::domain::permissions::PolicyMove;

#[derive(Debug)]
pub enum AdminStage {
    Editing,
    Previewing {
        request: u64,
    },
    Confirm {
        impact: Vec<ImpactRow>,
        moves: Vec<PolicyMove>,
    },
    Applying {
        request: u64,
    },
    /// "Drop the staged chain/policy change and close?" (Esc or q with
    /// something staged; `quit`: asked on the way out of keyfall).
    Discard {
        quit: bool,
    },
}

#[derive(Debug)]
pub struct AdminView {
    pub chain: Vec<String>,
    pub original_chain: Vec<String>,
    pub policy: Policy,
    pub original_policy: Policy,
    pub selected: usize,
    pub stage: AdminStage,
    pub message: Option<String>,
}

impl AdminView {
    pub fn chain_changed(&self) -> bool {
        self.chain != self.original_chain
    }

    pub fn policy_changed(&self) -> bool {
        self.policy != self.original_policy
    }
}

"""Study files: TOML → :class:`StudySpec`, every field validated once, before anything is written; the study's
identity (what a resumed study must share with the run that created it).

* ``_model``: the dataclasses a study file becomes;
* ``_fields``: the declared constraints of each table (checked by ``sysprune._validation.check_table``);
* ``_search_space``: ``[search_space]`` entries checked against the model's declared space;
* ``_parse``: the one entry point (:func:`parse_spec`, :func:`load_spec`);
* ``_identity``: :func:`study_identity`, :func:`identity_diff`.
"""

from sysprune._validation import InvalidArgument, check_argument, invalid
from sysprune.exceptions import SpecError
from sysprune.pruners import BUDGET
from sysprune.spec._fields import DIRECTIONS, N_TRIALS, SAMPLERS, SEED, STEPS, STUDY_NAME, TOP_KEYS
from sysprune.spec._identity import (
    IDENTITY_KEYS,
    IDENTITY_VERSION,
    describe_diff,
    identity_diff,
    param_identity,
    study_identity,
)
from sysprune.spec._model import DatasetSpec, ObjectiveSpec, PrunerSpec, SamplerSpec, StudySpec, TrialSpec
from sysprune.spec._parse import list_specs, load_spec, parse_spec
from sysprune.spec._search_space import Domain, declared_domain, parse_param, parse_search_space

__all__ = [
    "BUDGET",
    "DIRECTIONS",
    "IDENTITY_KEYS",
    "IDENTITY_VERSION",
    "N_TRIALS",
    "SAMPLERS",
    "SEED",
    "STEPS",
    "STUDY_NAME",
    "TOP_KEYS",
    "DatasetSpec",
    "Domain",
    "InvalidArgument",
    "ObjectiveSpec",
    "PrunerSpec",
    "SamplerSpec",
    "SpecError",
    "StudySpec",
    "TrialSpec",
    "check_argument",
    "declared_domain",
    "describe_diff",
    "identity_diff",
    "invalid",
    "list_specs",
    "load_spec",
    "param_identity",
    "parse_param",
    "parse_search_space",
    "parse_spec",
    "study_identity",
]

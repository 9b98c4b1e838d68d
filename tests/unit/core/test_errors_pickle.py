"""Errors survive pickling unchanged: a Dask worker's refusal reaches the client as it was raised."""

import pickle

import pytest

from investigator.errors import ContentNotGranted, IntegrityError, InvestigatorError, PolicyDenied


@pytest.mark.parametrize("err", [
    PolicyDenied("the chunk is outside the grant", rule="process_ticket.scope"),
    ContentNotGranted("keyword search"),
    IntegrityError("batches/00000003/manifest.json: signature does not verify"),
    InvestigatorError("plain", hint="try again"),
])
def test_an_error_pickles_to_the_same_message_and_attributes(err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.hint == err.hint
    assert back.__dict__ == err.__dict__
    if isinstance(err, PolicyDenied):
        assert (back.rule, back.reason) == (err.rule, err.reason)
        assert not str(back).startswith("denied: denied")

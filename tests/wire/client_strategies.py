"""Hypothesis strategies for every client-port record (round trip and fuzz)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.wire.strategies import ints, longs, maybe_blobs
from zkquorum.wire import client_records as cr
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import OpCode

texts = st.text(max_size=30) | st.just(cr.NULL_STRING)
maybe_texts = st.none() | st.text(max_size=30)
text_lists = st.lists(texts, max_size=4).map(tuple)
password = st.none() | st.binary(max_size=20)
maybe_bool = st.none() | st.booleans()

ids = st.builds(Id, texts, texts)
acl_lists = st.none() | st.lists(st.builds(ACL, ints, ids), max_size=3).map(tuple)
stats = st.builds(cr.Stat, longs, longs, longs, longs, ints, ints, ints, longs, ints, ints, longs)
connect_requests = st.builds(cr.ConnectRequest, ints, longs, ints, longs, password, maybe_bool)
connect_responses = st.builds(cr.ConnectResponse, ints, ints, longs, password, maybe_bool)
request_headers = st.builds(cr.RequestHeader, ints, ints)
reply_headers = st.builds(cr.ReplyHeader, ints, longs, ints)
watcher_events = st.builds(cr.WatcherEvent, ints, ints, texts)

create_requests = st.builds(cr.CreateRequest, texts, maybe_blobs, acl_lists, ints)
create_ttl_requests = st.builds(cr.CreateTTLRequest, texts, maybe_blobs, acl_lists, ints, longs)
delete_requests = st.builds(cr.DeleteRequest, texts, ints)
set_data_requests = st.builds(cr.SetDataRequest, texts, maybe_blobs, ints)
check_requests = st.builds(cr.CheckVersionRequest, texts, ints)
get_data_requests = st.builds(cr.GetDataRequest, texts, st.booleans())
get_children_requests = st.builds(cr.GetChildrenRequest, texts, st.booleans())

_MULTI_OPS: dict[OpCode, st.SearchStrategy[cr.MultiOpRequest]] = {
    OpCode.CREATE: create_requests,
    OpCode.CREATE2: create_requests,
    OpCode.CREATE_CONTAINER: create_requests,
    OpCode.CREATE_TTL: create_ttl_requests,
    OpCode.DELETE: delete_requests,
    OpCode.SET_DATA: set_data_requests,
    OpCode.CHECK: check_requests,
    OpCode.GET_CHILDREN: get_children_requests,
    OpCode.GET_DATA: get_data_requests,
}


_READS = (OpCode.GET_CHILDREN, OpCode.GET_DATA)


@st.composite
def multi_records(draw: st.DrawFn) -> cr.MultiOperationRecord:
    """All reads (multiRead) or all writes (multi): 3.8 does not decode a mix."""
    reads = draw(st.booleans())
    kinds = sorted(op for op in _MULTI_OPS if (op in _READS) == reads)
    ops = draw(st.lists(st.sampled_from(kinds), max_size=4))
    return cr.MultiOperationRecord(tuple(cr.Op(op, draw(_MULTI_OPS[op])) for op in ops))


REQUESTS: dict[int, st.SearchStrategy[cr.RequestRecord]] = {
    OpCode.CREATE: create_requests,
    OpCode.DELETE: delete_requests,
    OpCode.EXISTS: st.builds(cr.ExistsRequest, texts, st.booleans()),
    OpCode.GET_DATA: get_data_requests,
    OpCode.SET_DATA: set_data_requests,
    OpCode.GET_ACL: st.builds(cr.GetACLRequest, texts),
    OpCode.SET_ACL: st.builds(cr.SetACLRequest, texts, acl_lists, ints),
    OpCode.GET_CHILDREN: get_children_requests,
    OpCode.SYNC: st.builds(cr.SyncRequest, texts),
    OpCode.GET_CHILDREN2: st.builds(cr.GetChildren2Request, texts, st.booleans()),
    OpCode.CHECK: check_requests,
    OpCode.MULTI: multi_records(),
    OpCode.CREATE2: create_requests,
    OpCode.RECONFIG: st.builds(cr.ReconfigRequest, maybe_texts, maybe_texts, maybe_texts, longs),
    OpCode.CHECK_WATCHES: st.builds(cr.CheckWatchesRequest, texts, ints),
    OpCode.REMOVE_WATCHES: st.builds(cr.RemoveWatchesRequest, texts, ints),
    OpCode.CREATE_CONTAINER: create_requests,
    # the body is the bare path: it cannot tell an empty path from a missing one
    OpCode.DELETE_CONTAINER: st.builds(cr.DeleteContainerRequest, st.text(min_size=1)),
    OpCode.CREATE_TTL: create_ttl_requests,
    OpCode.MULTI_READ: multi_records(),
    OpCode.AUTH: st.builds(cr.AuthPacket, ints, texts, maybe_blobs),
    OpCode.SET_WATCHES: st.builds(cr.SetWatches, longs, text_lists, text_lists, text_lists),
    OpCode.SASL: st.builds(cr.GetSASLRequest, maybe_blobs),
    OpCode.GET_EPHEMERALS: st.builds(cr.GetEphemeralsRequest, texts),
    OpCode.GET_ALL_CHILDREN_NUMBER: st.builds(cr.GetAllChildrenNumberRequest, texts),
    OpCode.SET_WATCHES2: st.builds(
        cr.SetWatches2, longs, text_lists, text_lists, text_lists, text_lists, text_lists
    ),
    OpCode.ADD_WATCH: st.builds(cr.AddWatchRequest, texts, ints),
    OpCode.CREATE_SESSION: st.builds(cr.CreateSessionRequest, ints),
}
"""A strategy for the request record of every op code that has one."""

_results = st.one_of(
    st.builds(cr.CreateResult, texts, st.none() | stats),
    st.just(cr.DeleteResult()),
    st.builds(cr.SetDataResult, stats),
    st.just(cr.CheckResult()),
    st.builds(cr.GetChildrenResult, text_lists),
    st.builds(cr.GetDataResult, maybe_blobs, stats),
    st.builds(cr.ErrorResult, ints),
)
multi_responses = st.builds(cr.MultiResponse, st.lists(_results, max_size=4).map(tuple))
get_data_responses = st.builds(cr.GetDataResponse, maybe_blobs, stats)
create2_responses = st.builds(cr.Create2Response, texts, stats)
set_data_responses = st.builds(cr.SetDataResponse, stats)

RESPONSES: dict[int, st.SearchStrategy[cr.ResponseRecord]] = {
    OpCode.NOTIFICATION: watcher_events,
    OpCode.CREATE: st.builds(cr.CreateResponse, texts),
    OpCode.EXISTS: st.builds(cr.ExistsResponse, stats),
    OpCode.GET_DATA: get_data_responses,
    OpCode.SET_DATA: set_data_responses,
    OpCode.GET_ACL: st.builds(cr.GetACLResponse, acl_lists, stats),
    OpCode.SET_ACL: st.builds(cr.SetACLResponse, stats),
    OpCode.GET_CHILDREN: st.builds(cr.GetChildrenResponse, text_lists),
    OpCode.SYNC: st.builds(cr.SyncResponse, texts),
    OpCode.GET_CHILDREN2: st.builds(cr.GetChildren2Response, text_lists, stats),
    OpCode.CHECK: set_data_responses,
    OpCode.MULTI: multi_responses,
    OpCode.CREATE2: create2_responses,
    OpCode.RECONFIG: get_data_responses,
    OpCode.CREATE_CONTAINER: create2_responses,
    OpCode.CREATE_TTL: create2_responses,
    OpCode.MULTI_READ: multi_responses,
    OpCode.SASL: st.builds(cr.SetSASLResponse, maybe_blobs),
    OpCode.GET_EPHEMERALS: st.builds(cr.GetEphemeralsResponse, text_lists),
    OpCode.GET_ALL_CHILDREN_NUMBER: st.builds(cr.GetAllChildrenNumberResponse, ints),
    OpCode.ADD_WATCH: st.builds(cr.ErrorResponse, ints),
    OpCode.WHO_AM_I: st.builds(
        cr.WhoAmIResponse,
        st.lists(st.builds(cr.ClientInfo, texts, texts), max_size=3).map(tuple),
    ),
}
"""A strategy for the successful reply body of every op code that has one."""

"""The crm gRPC API: thin translation between messages and use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from consultflow.api.crm.v1 import crm_pb2 as pb
from consultflow.api.crm.v1 import crm_pb2_grpc as pb_grpc
from consultflow.crm import service
from consultflow.crm.domain import Channel, NewInquiry
from consultflow.crm.models import Client, Inquiry
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.paging import next_token, page_offset, page_size
from consultflow.platform.timeutil import timestamp

CHANNELS = {
    pb.CHANNEL_HOTLINE: Channel.HOTLINE,
    pb.CHANNEL_EMAIL: Channel.EMAIL,
    pb.CHANNEL_ONLINE: Channel.ONLINE,
    pb.CHANNEL_REFERRAL: Channel.REFERRAL,
    pb.CHANNEL_MARKET_RESEARCH: Channel.MARKET_RESEARCH,
}
CHANNEL_CODES = {v: k for k, v in CHANNELS.items()}


def inquiry_message(inquiry: Inquiry, client: Client) -> pb.Inquiry:
    return pb.Inquiry(
        inquiry_id=inquiry.inquiry_id,
        engagement_id=inquiry.engagement_id,
        channel=CHANNEL_CODES[Channel(inquiry.channel)],
        client_id=client.client_id,
        client_name=client.name,
        client_industry=client.industry,
        contact_name=inquiry.contact_name,
        contact_email=inquiry.contact_email,
        contact_phone=inquiry.contact_phone,
        question=inquiry.question,
        status=inquiry.status,
        received_at=timestamp(inquiry.received_at),
    )


class CrmServicer(pb_grpc.CrmServiceServicer):
    def __init__(self, uow: Callable[[], UnitOfWork]) -> None:
        self._uow = uow

    def RecordInquiry(self, request: pb.RecordInquiryRequest, context: grpc.ServicerContext) -> Any:
        if request.channel not in CHANNELS:
            raise InvalidArgument(
                "channel", "is required (hotline, email, online, referral or market research)"
            )
        command = NewInquiry(
            channel=CHANNELS[request.channel],
            client_name=request.client_name,
            client_industry=request.client_industry,
            contact_name=request.contact_name,
            contact_email=request.contact_email,
            contact_phone=request.contact_phone,
            question=request.question,
            engagement_id=request.engagement_id,
            request_id=request.request_id,
        )
        with self._uow() as uow:
            inquiry, client = service.record_inquiry(uow, command)
            uow.commit()
            return inquiry_message(inquiry, client)

    def GetInquiry(self, request: pb.GetInquiryRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            return inquiry_message(*service.get_inquiry(uow, request.inquiry_id))

    def GetClient(self, request: pb.GetClientRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            client, inquiries = service.get_client(uow, request.client_id)
        contacts = {(i.contact_name, i.contact_email, i.contact_phone) for i in inquiries}
        return pb.Client(
            client_id=client.client_id,
            name=client.name,
            industry=client.industry,
            contacts=[pb.Contact(name=n, email=e, phone=p) for n, e, p in sorted(contacts)],
            created_at=timestamp(client.created_at),
        )

    def ListInquiries(self, request: pb.ListInquiriesRequest, context: grpc.ServicerContext) -> Any:
        size, offset = page_size(request.page_size), page_offset(request.page_token)
        with self._uow() as uow:
            rows = service.list_inquiries(uow, request.status, request.engagement_id, size + 1, offset)
        return pb.ListInquiriesResponse(
            inquiries=[inquiry_message(i, c) for i, c in rows[:size]],
            next_page_token=next_token(offset, size, len(rows)),
        )

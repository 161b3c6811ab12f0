"""Shopping carts: an entity workflow per cart, checked out by request/response.

``ItemAdded`` and ``ItemRemoved`` change a cart (its ``CartEntity`` starts on
first use and may come back after it ended); ``CheckoutRequested`` is a
Workflow Update answered on ``carts.replies`` with ``CartCheckedOut`` or
``CheckoutRejected``; a checkout hands the order to the reference app's order
saga as an ``OrderPlaced`` on ``orders.events``; a cart left alone ends with
``CartAbandoned``. Run it with ``relayflow run --app examples.carts.app:APP``.
"""
